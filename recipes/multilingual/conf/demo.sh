# Demo size: one language in under 30 minutes on a 2-core CPU (synthetic speech, one BiLSTM).
seed=0
jobs=2
warp=0.15          # train-set speed perturbation: each espeak-ng voice variant a family of speakers
train_hours=2      # of TTS (espeak-ng speaks ~2 h in about a minute on 2 cores)
dev_utts=200
test_utts=300
epochs=100         # upper bound; the time budget ends training
bilstm_config=conf/bilstm.yaml
bilstm_minutes=14
eval_every=400
lm_order=3
char_lm_order=5   # languages written without spaces: a character 5-gram
beam=50
tune_beam=20
lexicon=free      # words outside the LM allowed (at unk_offset): with --lexicon lm, Spanish test 23.9 % vs 12.3 %
tune_trials=12
