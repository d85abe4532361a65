# Larger setting: 40 h of speech (nearly every extracted sentence) and longer training; under 2 hours on a 2-core CPU (run it in the background).
seed=0
jobs=2
warp=0.15          # train-set speed perturbation (speaker variety)
f0=0.3             # train-set flite/festival pitch, 0.7-1.3x each voice's own: same steps, test WER of held-out flite:rms 88.2 -> 85.7 % (BiLSTM), 110 -> 103 % (streaming)
train_hours=40
dev_utts=300
test_utts=500
epochs=100
bilstm_minutes=55
streaming_minutes=40
uqm_weight=2       # UQM train utterances per epoch, per synthetic one (train.mix_weights): recorded speech counts double
train_args=""
uqm_test=test      # all 1421 lines of the UQM test speakers
decode_dev=true
telephone_models="bilstm streaming"   # models also scored at 8 kHz
lm_order=4
beam=50            # beam search + LM on dev/test
lexicon=auto       # auto = lm: words restricted to the LM vocabulary (free: any spelling, OOVs penalized)
tune_beam=20       # beam while tuning alpha/beta on dev
tune_trials=30
