# The offline test (tests/test_multilingual_recipe.py): a fake unpacked tree of Debian text and
# prompts, espeak-ng speaking a few dozen lines, a tiny model for 2 epochs; nothing is meant to learn.
seed=0
jobs=1
warp=0
train_hours=0.01
dev_utts=4
test_utts=4
epochs=2
bilstm_config=conf/tiny.yaml
bilstm_minutes=0
warm_minutes=0
eval_every=0
lm_order=2
char_lm_order=3
beam=4
tune_beam=4
tune_trials=2
lexicon=free
