// The asr serve page. A session is one WebSocket to /ws fed 16 kHz mono int16 PCM, from the
// microphone (AudioWorklet capture.js, 100 ms messages, real time) or from a chosen file
// (decoded and resampled by the browser, sent as fast as the server answers: one message in
// flight, the next sent on its partial). Partial results show in grey; each final line is
// appended with its times (seconds from the session's start) and its words shaded by
// confidence. The transcript can be copied or downloaded as text, SRT or JSON.
// ?autostart starts the microphone without a click (used by the tests).
"use strict";

const RATE = 16000, CHUNK = 1600;
const $ = (id) => document.getElementById(id);
const sessions = [];  // {source, started, lines: [{start, end, text, words: [[w, s, e, c]]}]}
let info = {};
let live = null;  // the open session (openSession)

const partial = document.createElement("div");
partial.id = "partial";
partial.className = "partial";

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function setLevel(rms) {
  const db = 20 * Math.log10(Math.max(rms, 1e-6));
  $("level").value = Math.min(1, Math.max(0, (db + 60) / 60));  // -60 dBFS .. 0 dBFS
  $("level-db").textContent = db > -100 ? `${Math.round(db)} dB` : "–∞ dB";
}

function clock(t) {
  const m = Math.floor(t / 60);
  return `${m}:${(t - 60 * m).toFixed(1).padStart(4, "0")}`;
}

function busy(on) {
  $("start").disabled = on;
  $("stop").disabled = !on;
  $("file").disabled = on;
  const empty = !sessions.some((s) => s.lines.length);
  for (const id of ["copy", "download-txt", "download-srt", "download-json"]) $(id).disabled = empty;
}

// ----------------------------------------------------------------------------- results

function send(session, pcm) {
  if (!session.sent) session.t0 = performance.now();
  session.sent++;
  session.ws.send(pcm);
}

function addFinal(session, msg) {
  if (!msg.text) return;
  // the line's time is its words' span (the utterance's audio runs from the pre-roll to the endpoint)
  const [start, end] = msg.words.length ? [msg.words[0][1], msg.words[msg.words.length - 1][2]] : [msg.start, msg.end];
  // received: seconds from the session's first audio message to this line's arrival
  const received = +((performance.now() - session.t0) / 1000).toFixed(3);
  const line = {start, end, text: msg.text, words: msg.words, received};
  session.record.lines.push(line);
  const p = document.createElement("p");
  p.className = "final";
  p.dataset.start = start;
  p.dataset.end = end;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = `${clock(start)}–${clock(end)}`;
  const text = document.createElement("span");
  text.className = "text";
  msg.words.forEach(([word, start, end, confidence], i) => {
    const w = document.createElement("span");
    w.className = "word";
    w.textContent = word;
    w.dataset.confidence = confidence;
    w.style.setProperty("--doubt", (1 - confidence).toFixed(3));
    w.title = `confidence ${confidence.toFixed(2)}, ${start.toFixed(2)}–${end.toFixed(2)} s`;
    if (i) text.append(" ");
    text.append(w);
  });
  if (!msg.words.length) text.textContent = msg.text;
  p.append(time, text);
  session.element.insertBefore(p, partial);
  busy(true);
}

function openSession(source) {
  const record = {source, started: new Date().toISOString(), lines: []};
  sessions.push(record);
  const element = document.createElement("section");
  element.className = "session";
  const title = document.createElement("h2");
  title.textContent = `${source} · ${new Date().toLocaleTimeString()}`;
  element.append(title, partial);
  partial.textContent = "";
  $("transcript").append(element);
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.binaryType = "arraybuffer";
  // sent / answered: audio messages sent and partials received (the server answers each
  // with its finals, then a partial); after "end", the final that comes when all are
  // answered is the end's.
  live = {ws, record, element, acks: [], sent: 0, answered: 0, ending: null, stopCapture: null};
  const session = live;
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "partial") {
      partial.textContent = msg.text;
      session.answered++;
      const ack = session.acks.shift();
      if (ack) ack();
    } else if (msg.type === "final") {
      partial.textContent = "";
      addFinal(session, msg);
      if (session.ending && session.answered === session.sent) session.ending();
    }
  };
  ws.onclose = (event) => {
    if (event.code !== 1000 && event.code !== 1005) setStatus(`closed (${event.code}${event.reason ? ": " + event.reason : ""})`, true);
    session.acks.splice(0).forEach((ack) => ack());
    if (session.ending) {
      session.ending();
    } else if (live === session) {  // closed by the server: stop the capture
      if (session.stopCapture) session.stopCapture();
      live = null;
      setLevel(0);
      busy(false);
    }
  };
  busy(true);
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(session);
    ws.onerror = () => reject(new Error("cannot reach the server's /ws"));
  });
}

async function closeSession() {
  const session = live;
  if (!session) return;
  if (session.ws.readyState === WebSocket.OPEN) {
    const ended = new Promise((resolve) => { session.ending = resolve; });
    session.ws.send(JSON.stringify({type: "end"}));
    await ended;
    session.ws.close(1000);
  }
  partial.textContent = "";
  live = null;
  setLevel(0);
  busy(false);
}

// ----------------------------------------------------------------------------- sources

async function startMicrophone() {
  const session = await openSession("Microphone");
  const stream = await navigator.mediaDevices.getUserMedia({audio: {channelCount: 1, echoCancellation: false,
                                                                     noiseSuppression: false, autoGainControl: false}});
  const context = new AudioContext({sampleRate: RATE});  // the browser resamples the microphone
  await context.audioWorklet.addModule("/static/capture.js");
  const source = context.createMediaStreamSource(stream);
  const capture = new AudioWorkletNode(context, "pcm16-capture", {processorOptions: {chunk: CHUNK}});
  capture.port.onmessage = (event) => {
    setLevel(event.data.rms);
    if (session.ws.readyState === WebSocket.OPEN && !session.ending) send(session, event.data.pcm);
  };
  source.connect(capture);
  session.stopCapture = async () => {
    stream.getTracks().forEach((t) => t.stop());
    await context.close();
  };
  if (live !== session) {  // the server closed the socket (too many streams) while the microphone opened
    await session.stopCapture();
    return;
  }
  setStatus("listening");
}

async function stop() {
  $("stop").disabled = true;
  if (live && live.stopCapture) await live.stopCapture();
  await closeSession();
  setStatus("stopped");
}

async function decodeFile(file) {
  const bytes = await file.arrayBuffer();
  let audio;
  try {
    audio = await new OfflineAudioContext(1, 1, RATE).decodeAudioData(bytes);  // resampled to 16 kHz
  } catch (e) {
    throw new Error(`cannot decode ${file.name}: not an audio file this browser reads (${e.message || e})`);
  }
  const mono = new Float32Array(audio.length);
  for (let c = 0; c < audio.numberOfChannels; c++) {
    const channel = audio.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / audio.numberOfChannels;
  }
  return mono;
}

async function transcribeFile(file) {
  setStatus(`reading ${file.name}`);
  const samples = await decodeFile(file);
  if (!samples.length) throw new Error(`${file.name}: no audio in it`);
  const session = await openSession(`File ${file.name}`);
  for (let i = 0; i < samples.length && session.ws.readyState === WebSocket.OPEN; i += CHUNK) {
    const piece = samples.subarray(i, i + CHUNK);
    const pcm = new Int16Array(piece.length);
    let energy = 0;
    piece.forEach((s, k) => {
      s = Math.max(-1, Math.min(1, s));
      energy += s * s;
      pcm[k] = s < 0 ? s * 32768 : s * 32767;
    });
    setLevel(Math.sqrt(energy / piece.length));
    const acked = new Promise((resolve) => session.acks.push(resolve));
    send(session, pcm.buffer);
    await acked;
    setStatus(`transcribing ${file.name}: ${Math.round((100 * (i + piece.length)) / samples.length)} %`);
  }
  await closeSession();
  setStatus(`transcribed ${file.name} (${(samples.length / RATE).toFixed(1)} s)`);
}

// ----------------------------------------------------------------------------- export

function plainText() {
  return sessions.flatMap((s) => s.lines.map((l) => l.text)).join("\n") + "\n";
}

function srt() {
  const stamp = (t) => {
    const ms = Math.round(t * 1000), h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60;
    const s = Math.floor(ms / 1000) % 60;
    return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")},${String(ms % 1000).padStart(3, "0")}`;
  };
  const lines = sessions.flatMap((s) => s.lines);  // times restart with each session
  return lines.map((l, i) => `${i + 1}\n${stamp(l.start)} --> ${stamp(l.end)}\n${l.text}\n`).join("\n");
}

function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], {type}));
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

async function copy() {
  const text = plainText();
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {  // no clipboard API (plain http on another host): a selected textarea
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) throw new Error("the browser refused the clipboard");
  }
  setStatus(`copied ${text.trim().split("\n").length} lines`);
}

// ----------------------------------------------------------------------------- wiring

const failed = (e) => {
  setStatus("error: " + (e.message || e), true);
  if (live) closeSession();
};
$("start").onclick = () => startMicrophone().catch(failed);
$("stop").onclick = () => stop().catch(failed);
$("file").onchange = (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (file) transcribeFile(file).catch(failed);
};
$("copy").onclick = () => copy().catch(failed);
$("download-txt").onclick = () => download("transcript.txt", plainText(), "text/plain");
$("download-srt").onclick = () => download("transcript.srt", srt(), "application/x-subrip");
$("download-json").onclick = () =>
  download("transcript.json", JSON.stringify({server: info, sessions}, null, 2) + "\n", "application/json");

fetch("/info")
  .then((r) => r.json())
  .then((data) => {
    info = data;
    $("model").textContent = `${data.model} (${data.architecture})`;
    $("lm").textContent = data.lm || "none";
    $("decoding").textContent = `${data.decoding}, ${data.words ? data.words + " words" : "open vocabulary"}` +
      `, ${data.calibrated ? "calibrated" : "raw"} confidence, ${data.vad} VAD`;
  })
  .catch(() => setStatus("error: no /info from the server", true));
if (new URLSearchParams(location.search).has("autostart")) startMicrophone().catch(failed);
