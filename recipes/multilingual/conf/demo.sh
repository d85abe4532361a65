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
warm_minutes=0     # of bilstm_minutes, on the romanized text first where the language's row names one
eval_every=400
lm_order=3
char_lm_order=5   # languages written without spaces: a character 5-gram
beam=50
tune_beam=20
lexicon=free      # words outside the LM allowed (at unk_offset): with --lexicon lm, Spanish test 23.9 % vs 12.3 %
tune_trials=12
# A language written in thousands of characters needs many examples of each where an alphabet's
# ~36 letters have them in 2 h: Mandarin speaks its whole text (~13 h of espeak-ng speech, 2 min),
# trains longer, in the same 30 minutes in all, and its first minutes on pinyin (RESULTS.md).
case $lang in
    zh) train_hours=14; bilstm_minutes=18; warm_minutes=6 ;;
esac
