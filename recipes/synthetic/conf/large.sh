# Larger setting: more hours and longer training, under 2 hours on a 2-core CPU (run in the background).
seed=0
jobs=2
warp=0.15          # train-set speed perturbation (speaker variety)
train_hours=30
dev_utts=300
test_utts=500
epochs=100
bilstm_minutes=55
streaming_minutes=45
train_args=""
