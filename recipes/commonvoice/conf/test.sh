# The offline test (tests/test_commonvoice_recipe.py): a fake release in Common Voice's layout,
# tiny models on the CPU. Every stage runs; nothing here is meant to learn.
models="bilstm streaming"
bilstm_config=conf/tiny.yaml
streaming_config=conf/tiny-streaming.yaml
epochs=2
bilstm_minutes=0
streaming_minutes=0
train_args=""
lm_order=3
char_lm_order=3
tune_beam=4
tune_trials=2
beam=8
jobs=1
lexicon=free
