#!/usr/bin/env bash
# The offline recipe: recorded human speech (The Ur-Quan Masters, recipes/uqm) + a synthetic
# TTS corpus -> BiLSTM and streaming CTC models -> WER tables per test set.
#
#   bash recipes/synthetic/run.sh [--size demo|large] [--stage N] [--stop-stage N] [--data DIR]
#        [--set NAME=VALUE]...
#
# Stages (each leaves DATA/.done/<stage> and is skipped on a rerun):
#   0  check the TTS engines and text sources
#   1  extract English sentences; dev/test sentences never appear in train
#   2  synthesize train (training voices) and dev/test (held-out voices), 16 kHz mono
#   3  the UQM corpus (recipes/uqm/run.sh into DATA/uqm: held-out speakers for dev/test),
#      8 kHz copies of every test set, and the mixed dev set (synthetic + UQM)
#   4  train the BiLSTM model on synthetic + UQM train   (DATA/exp/bilstm)
#   5  train the streaming model the same way            (DATA/exp/streaming)
#   6  build a word n-gram LM (KenLM) from the training text only (synthetic + UQM train)
#   7  decode every dev/test set with both models: greedy, then beam search + LM with
#      alpha/beta tuned on the mixed dev set; write DATA/RESULTS.md and print the tables
#   8  transcribe one UQM test file with `asr transcribe` (greedy, then with the LM)
# Sizes live in recipes/synthetic/conf/<size>.sh; model settings in conf/*.yaml. --set overrides one
# of the size's settings for an experiment (--set kokoro_share=0.25 --set models=bilstm: an A/B of
# the BiLSTM alone; give it its own --data).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
size=demo
stage=0
stop_stage=100
data=""
overrides=()
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=$2; shift 2 ;;
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --set) overrides+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$here/conf/$size.sh" ] || { echo "error: no size '$size' (conf/$size.sh missing)" >&2; exit 2; }
# shellcheck source=/dev/null
source "$here/conf/$size.sh"
models=${models:-bilstm streaming}   # the models stages 4, 5 and 7 train and decode
# shellcheck source=../stages.sh
source "$here/../stages.sh"
apply_overrides "conf/$size.sh" "${overrides[@]}"
data=${data:-$root/data/synthetic-$size}
tts_cache=${TTS_CACHE:-$root/data/tts-cache}   # finished utterances by text + voice + draws (synthesize.py --cache)
mkdir -p "$data/.done"
python=${PYTHON:-python}
asr="$python -m asr.cli"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
start_time=$SECONDS
dev_sets="dev uqm/dev"                # manifests under DATA (held-out voices; held-out UQM speakers)
test_sets="test uqm/$uqm_test"

# shellcheck source=local/decode.sh
source "$here/local/decode.sh"

if run_stage 0 "check tools"; then
    for tool in espeak-ng flite text2wave sox; do
        command -v "$tool" >/dev/null || { echo "error: $tool not found; run 'make setup'" >&2; exit 1; }
    done
    done_stage 0
fi

if run_stage 1 "extract sentences"; then
    $python "$here/local/extract_text.py" --out "$data/text" --dev "$dev_utts" --test "$test_utts" --seed "$seed"
    done_stage 1
fi

if run_stage 2 "synthesize speech"; then
    $python "$here/local/synthesize.py" --text "$data/text/train.txt" --voices train --hours "$train_hours" \
        --out-dir "$data/wav/train" --manifest "$data/train.jsonl" --jobs "$jobs" --seed "$seed" --warp "$warp" --f0 "${f0:-0}" \
        --kokoro-share "${kokoro_share:-0}" --cache "$tts_cache"
    for part in dev test; do
        $python "$here/local/synthesize.py" --text "$data/text/$part.txt" --voices heldout \
            --out-dir "$data/wav/$part" --manifest "$data/$part.jsonl" --jobs "$jobs" --seed "$seed" \
            --cache "$tts_cache"
    done
    done_stage 2
fi

if run_stage 3 "the UQM corpus (recorded speech), 8 kHz test copies, the mixed dev set"; then
    bash "$here/../uqm/run.sh" --data "$data/uqm" --jobs "$jobs"
    for set in $test_sets; do
        $python "$root/tools/telephone_copy.py" "$data/$set.jsonl" --out-dir "$data/8k/$(dirname "$set")" --rate 8000
    done
    $asr manifest merge "$data/dev.jsonl" "$data/uqm/dev.jsonl" --out "$data/dev-mixed.jsonl"
    done_stage 3
fi

train_model() {  # train_model NAME MINUTES
    $asr train --config "$here/conf/$1.yaml" \
        --train.train_manifest "$data/train.jsonl,$data/uqm/train.jsonl" --train.mix_weights "1,$uqm_weight" \
        --train.dev_manifest "$data/dev.jsonl,$data/uqm/dev.jsonl" --train.eval_every "$eval_every" \
        --train.out_dir "$data/exp/$1" --train.max_minutes "$2" --train.epochs "$epochs" \
        --train.seed "$seed" $train_args
}

if [[ " $models " == *" bilstm "* ]] && run_stage 4 "train the BiLSTM model ($bilstm_minutes min)"; then
    train_model bilstm "$bilstm_minutes"
    done_stage 4
fi

if [[ " $models " == *" streaming "* ]] && run_stage 5 "train the streaming model ($streaming_minutes min)"; then
    train_model streaming "$streaming_minutes"
    done_stage 5
fi

if run_stage 6 "build a ${lm_order}-gram LM from the training text (synthetic + UQM train; no dev/test line in it)"; then
    $asr lm build --text "$data/text/train.txt" "$data/uqm/text/train.txt" --order "$lm_order" --out "$data/lm"
    $asr lm eval --lm "$data/lm" --text "$data/text/dev.txt"
    $asr lm eval --lm "$data/lm" --text "$data/uqm/text/dev.txt"
    done_stage 6
fi

if run_stage 7 "decode: tune the LM weights on the mixed dev set, then greedy and beam search + LM on each set"; then
    for model in $models; do
        manifests=()
        for set in $test_sets; do
            manifests+=("$data/$set.jsonl")
            case " $telephone_models " in *" $model "*) manifests+=("$data/8k/$set.jsonl") ;; esac
        done
        if [ "$decode_dev" = true ]; then for set in $dev_sets; do manifests+=("$data/$set.jsonl"); done; fi
        decode_model "$data/exp/$model" "${manifests[@]}"
    done
    $python "$here/local/results_table.py" --data "$data" --size "$size" --beam "$beam" --uqm-test "$uqm_test" \
        > "$data/RESULTS.md"
    done_stage 7
fi
[ -f "$data/RESULTS.md" ] && { echo; cat "$data/RESULTS.md"; }

if run_stage 8 "transcribe a file with the CLI"; then
    clip=$($python -c "import json,sys; r=json.loads(open(sys.argv[1]).readline()); print(r['audio'], r['text'], sep='\t')" "$data/uqm/test.jsonl")
    file="$data/uqm/${clip%%$'\t'*}"
    echo "asr transcribe --model $data/exp/bilstm/best.pt $file"
    echo "reference:  ${clip#*$'\t'}"
    echo -n "hypothesis: "
    $asr transcribe --model "$data/exp/bilstm/best.pt" "$file"
    echo -n "with the LM: "
    $asr transcribe --model "$data/exp/bilstm/best.pt" "$file" --lm "$data/lm" \
        --tuned "$data/exp/bilstm/decode/tune-lm-dev-mixed.json" --beam "$beam" --lexicon "$lexicon"
    done_stage 8
fi
echo
echo "recipe finished in $(( (SECONDS - start_time) / 60 )) min $(( (SECONDS - start_time) % 60 )) s; outputs under $data"
