# The offline test (tests/test_librispeech_recipe.py): a fake LibriSpeech served on 127.0.0.1,
# tiny models on the CPU. Every stage runs; nothing here is meant to learn.
subset=100
mirrors=""           # given with --mirror
checksums=""         # given with --checksums
lm_source=openslr
lm_order=3
lm_prune=""
shard_mb=0.2
bilstm_config=conf/tiny.yaml
streaming_config=conf/tiny-streaming.yaml
models="bilstm streaming"
epochs=2
train_args="--train.save_every 2"
avg=2
tune_beam=4
tune_trials=2
beam=8
lexicon=auto
decode_workers=1
