# Default: a Common Voice language of tens to hundreds of hours on one GPU (or several CPU hours
# for a few hours of speech). Models: conf/bilstm.yaml, conf/streaming.yaml.
models="bilstm streaming"
bilstm_config=conf/bilstm.yaml
streaming_config=conf/streaming.yaml
epochs=30
bilstm_minutes=0      # a wall-clock budget per model (0: epochs alone end training)
streaming_minutes=0
train_args=""         # more `asr train` options, e.g. "--train.batch_seconds 1200"
lm_order=4
char_lm_order=6   # languages written without spaces: a character 6-gram
tune_beam=50
tune_trials=30
lexicon=free       # words outside the LM allowed (at unk_offset): a release's sentences leave many test words out
beam=200
jobs=4                # decoding processes
