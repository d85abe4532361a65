// AudioWorklet: mono float32 frames at the context's rate (16 kHz) → messages of `chunk`
// little-endian int16 samples, each with its RMS level ({pcm: ArrayBuffer, rms: number}),
// posted to the main thread (which sends the samples over the socket and shows the level).
class Pcm16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = (options.processorOptions && options.processorOptions.chunk) || 1600;
    this.buffer = new Int16Array(this.chunk);
    this.filled = 0;
    this.energy = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.energy += s * s;
      this.buffer[this.filled++] = s < 0 ? s * 32768 : s * 32767;
      if (this.filled === this.chunk) {
        const rms = Math.sqrt(this.energy / this.chunk);
        this.port.postMessage({pcm: this.buffer.buffer, rms}, [this.buffer.buffer]);
        this.buffer = new Int16Array(this.chunk);
        this.filled = 0;
        this.energy = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
