# Demo size: the whole recipe in about 20 minutes on a 2-core CPU (make demo).
seed=0
jobs=2
warp=0.15          # train-set speed perturbation (speaker variety)
f0=0.3             # train-set flite/festival pitch, 0.7-1.3x each voice's own: same steps, test WER of held-out flite:rms 88.2 -> 85.7 % (BiLSTM), 110 -> 103 % (streaming)
train_hours=12       # more sentences seen once beat fewer seen often: 8-min BiLSTM dev WER 72.4 -> 69.5 %
dev_utts=200
test_utts=300
epochs=100          # upper bound; the time budgets below end training
bilstm_minutes=8
streaming_minutes=6
uqm_weight=2       # UQM train utterances per epoch, per synthetic one (train.mix_weights): recorded speech counts double
train_args=""
lm_order=4
beam=50            # beam search + LM on dev/test
lexicon=auto       # auto = lm: words restricted to the LM vocabulary (free: any spelling, OOVs penalized)
tune_beam=20       # beam while tuning alpha/beta on dev
tune_trials=16
