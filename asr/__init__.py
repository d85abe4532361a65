"""asr: log-mel features → conv + (Bi)LSTM → CTC → decoding, on CPU or many GPUs."""

__version__ = "0.1.0"
