#!/usr/bin/env bash
# Fine-tuning A/B on the offline recipe's data: is a model that has heard only TTS voices a
# better start for recorded speech than nothing? Three BiLSTMs (conf/bilstm.yaml), the same
# minutes each:
#   tts          synthetic train only, from scratch (the "synthetic model")
#   uqm          UQM train only, from scratch
#   tts-uqm      UQM train only, starting from tts's weights (--train.init_from)
# each decoded greedy and with the recipe's LM on the UQM and synthetic test sets.
#
#   bash recipes/synthetic/finetune.sh [--size demo|large] [--minutes M] [--data DIR]
#
# Needs run.sh's stages 0-3 and 6 (data and LM) in DATA; stages here are numbered 10-13
# (DATA/.done/1x), so a rerun skips what is done and the recipe's own stages are untouched:
#   10  tts        11  uqm        12  tts-uqm        13  decode, then print the table
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
size=demo
minutes=""
data=""
stage=10
stop_stage=13
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=$2; shift 2 ;;
        --minutes) minutes=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --stage) stage=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$here/conf/$size.sh" ] || { echo "error: no size '$size' (conf/$size.sh missing)" >&2; exit 2; }
# shellcheck source=/dev/null
source "$here/conf/$size.sh"
minutes=${minutes:-$bilstm_minutes}
data=${data:-$root/data/synthetic-$size}
for need in train.jsonl test.jsonl dev-mixed.jsonl uqm/train.jsonl "uqm/$uqm_test.jsonl" lm; do
    [ -e "$data/$need" ] || { echo "error: $data/$need missing: run recipes/synthetic/run.sh --size $size --stop-stage 6 first" >&2; exit 1; }
done
python=${PYTHON:-python}
asr="$python -m asr.cli"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

# shellcheck source=../stages.sh
source "$here/../stages.sh"
# shellcheck source=local/decode.sh
source "$here/local/decode.sh"

train_on() {  # train_on NAME TRAIN_MANIFEST [more asr train arguments]
    local name=$1 manifest=$2
    shift 2
    $asr train --config "$here/conf/bilstm.yaml" --train.train_manifest "$manifest" \
        --train.dev_manifest "$data/dev.jsonl,$data/uqm/dev.jsonl" --train.eval_every "$eval_every" \
        --train.out_dir "$data/exp/ft-$name" --train.max_minutes "$minutes" --train.epochs "$epochs" \
        --train.seed "$seed" $train_args "$@"
}

if run_stage 10 "tts: the BiLSTM on synthetic speech only ($minutes min)"; then
    train_on tts "$data/train.jsonl"
    done_stage 10
fi

if run_stage 11 "uqm: the BiLSTM on UQM train only, from scratch ($minutes min)"; then
    train_on uqm "$data/uqm/train.jsonl"
    done_stage 11
fi

if run_stage 12 "tts-uqm: tts's weights fine-tuned on UQM train ($minutes min, fresh optimizer and schedule)"; then
    train_on tts-uqm "$data/uqm/train.jsonl" --train.init_from "$data/exp/ft-tts/best.pt"
    done_stage 12
fi

if run_stage 13 "decode the UQM and synthetic test sets, greedy and beam search + LM"; then
    for name in tts uqm tts-uqm; do
        decode_model "$data/exp/ft-$name" "$data/test.jsonl" "$data/uqm/$uqm_test.jsonl"
    done
    $python "$here/local/results_table.py" --data "$data" --size "$size" --beam "$beam" --uqm-test "$uqm_test" \
        --models "ft-tts=TTS only,ft-uqm=UQM only,ft-tts-uqm=TTS then UQM (init_from)" > "$data/FINETUNE.md"
    done_stage 13
fi
[ -f "$data/FINETUNE.md" ] && { echo; cat "$data/FINETUNE.md"; }
