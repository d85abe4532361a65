# Default: 960 h, DeepSpeech2-size models on all visible GPUs (see README.md for hours and launch lines).
subset=960           # training hours: 100 | 460 | 960
mirrors="www us eu"  # OpenSLR mirrors tried in order: www | us | eu | cn | a base URL holding 11/ and 12/
checksums=""         # JSON {name: {md5, size}} replacing the built-in table (a private mirror)
lm_source=openslr    # openslr: import resource 11's 4-gram.arpa.gz | build: asr lm build on librispeech-lm-norm
lm_order=4           # lm_source=build only
lm_prune="0 1 1 2"   # lm_source=build only: lmplz count thresholds per order
shard_mb=256
bilstm_config=conf/ds2.yaml
streaming_config=conf/streaming.yaml
models="bilstm streaming"
epochs=40
train_args=""        # more `asr train` options, e.g. "--train.batch_seconds 1200"
avg=5                # average the last N step checkpoints before decoding
tune_beam=100
tune_trials=30
beam=500
lexicon=auto
decode_workers=8
