#!/usr/bin/env bash
# LibriSpeech recipe: download -> manifests -> shards -> LM -> BiLSTM and streaming CTC models
# (torchrun on all visible GPUs) -> averaged checkpoints -> beam search + 4-gram -> RESULTS.md.
#
#   bash recipes/librispeech/run.sh [--data DIR] [--conf default|test] [--subset 100|460|960]
#        [--mirror www|us|eu|cn|URL]... [--checksums FILE.json] [--stage N] [--stop-stage N] [--dry-run]
#
# Stages (each leaves DATA/.done/<stage> and is skipped on a rerun):
#   1  download the audio archives and LM files (resumable, MD5-checked, mirrors)
#   2  extract; one manifest per part (durations from FLAC headers, normalized text), train.jsonl
#   3  WebDataset shards of the training manifest
#   4  the LM: import resource 11's 4-gram ARPA as KenLM binary, or build one from librispeech-lm-norm
#   5  train the BiLSTM model        (DATA/exp/bilstm; torchrun, or $LAUNCH for several nodes)
#   6  train the streaming model     (DATA/exp/streaming)
#   7  average checkpoints, tune alpha/beta on dev-clean, decode dev/test clean/other greedy and
#      with beam + LM, write DATA/RESULTS.md
#   8  validate what the earlier stages wrote
# --dry-run prints the files, their sizes and the disk needed, and exits.
# Settings: recipes/librispeech/conf/<conf>.sh; models: conf/*.yaml. Multi-node: run stage 5 on
# every node with LAUNCH="torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d
# --rdzv_endpoint=HOST:29500 --rdzv_id=ls960 -m asr.cli" (see README.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
conf=default
stage=1
stop_stage=100
data=""
dry_run=false
cli_subset=""
cli_mirrors=""
cli_checksums=""
while [ $# -gt 0 ]; do
    case "$1" in
        --data) data=$2; shift 2 ;;
        --conf) conf=$2; shift 2 ;;
        --subset) cli_subset=$2; shift 2 ;;
        --mirror) cli_mirrors="$cli_mirrors $2"; shift 2 ;;
        --checksums) cli_checksums=$2; shift 2 ;;
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$here/conf/$conf.sh" ] || { echo "error: no conf '$conf' (conf/$conf.sh missing)" >&2; exit 2; }
# shellcheck source=/dev/null
source "$here/conf/$conf.sh"
subset=${cli_subset:-$subset}
mirrors=${cli_mirrors:-$mirrors}
checksums=${cli_checksums:-$checksums}
data=${data:-$root/data/librispeech}
python=${PYTHON:-python}
asr="$python -m asr.cli"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
start_time=$SECONDS

lm_files="vocab lexicon"
[ "$lm_source" = openslr ] && lm_files="4-gram $lm_files"
[ "$lm_source" = build ] && lm_files="lm-norm $lm_files"
resources=("$python" "$here/local/resources.py" --subset "$subset" --lm-files $lm_files)
for m in $mirrors; do resources+=(--mirror "$m"); done
[ -n "$checksums" ] && resources+=(--checksums "$checksums")
case $subset in
    100) train_parts="train-clean-100" ;;
    460) train_parts="train-clean-100 train-clean-360" ;;
    960) train_parts="train-clean-100 train-clean-360 train-other-500" ;;
    *) echo "error: --subset $subset: choose 100, 460 or 960" >&2; exit 2 ;;
esac
sets="dev-clean dev-other test-clean test-other"

if $dry_run; then
    echo "LibriSpeech recipe, conf $conf, subset $subset h, data under $data; would download:"
    "${resources[@]}" plan
    exit 0
fi
mkdir -p "$data/.done"

# shellcheck source=../stages.sh
source "$here/../stages.sh"

if run_stage 1 "download LibriSpeech ($subset h of training audio) and LM files"; then
    "${resources[@]}" download --dest "$data/download"
    done_stage 1
fi

if run_stage 2 "extract and write manifests"; then
    # shellcheck disable=SC2086
    $python "$here/local/prepare.py" --download "$data/download" --corpus "$data/corpus" \
        --out "$data/manifests" --parts $sets --train-parts $train_parts
    done_stage 2
fi

if run_stage 3 "shard the training manifest"; then
    $asr shards "$data/manifests/train.jsonl" --out "$data/shards" --shard-mb "$shard_mb"
    done_stage 3
fi

if run_stage 4 "language model ($lm_source)"; then
    if [ "$lm_source" = openslr ]; then
        $asr lm import --arpa "$data/download/4-gram.arpa.gz" --out "$data/lm"
    else
        # shellcheck disable=SC2086
        $asr lm build --text "$data/download/librispeech-lm-norm.txt.gz" --order "$lm_order" \
            ${lm_prune:+--prune $lm_prune} --out "$data/lm"
    fi
    cut -d' ' -f2- "$data"/corpus/LibriSpeech/dev-clean/*/*/*.trans.txt > "$data/lm/dev-clean.txt"
    $asr lm eval --lm "$data/lm" --text "$data/lm/dev-clean.txt"
    done_stage 4
fi

launcher() {  # $LAUNCH, or torchrun on all visible GPUs, or one process
    if [ -n "${LAUNCH:-}" ]; then echo "$LAUNCH"; return; fi
    local ngpu
    ngpu=$($python -c "import torch; print(torch.cuda.device_count())")
    if [ "$ngpu" -gt 1 ]; then echo "$python -m torch.distributed.run --standalone --nproc_per_node=$ngpu -m asr.cli"
    else echo "$asr"; fi
}

train_model() {  # train_model NAME CONFIG
    # shellcheck disable=SC2086
    $(launcher) train --config "$here/$2" \
        --train.train_manifest "$data/shards" --train.dev_manifest "$data/manifests/dev-clean.jsonl" \
        --train.out_dir "$data/exp/$1" --train.epochs "$epochs" $train_args
}

n=5
for model in bilstm streaming; do
    if [[ " $models " == *" $model "* ]] && run_stage $n "train the $model model"; then
        config_var="${model}_config"
        train_model "$model" "${!config_var}"
        done_stage $n
    fi
    n=$((n + 1))
done

if run_stage 7 "average, tune alpha/beta on dev-clean, decode dev/test clean/other, RESULTS.md"; then
    for model in $models; do
        exp="$data/exp/$model"
        $asr average --last "$avg" "$exp" --out "$exp/avg.pt"
        for s in $sets; do
            $asr decode --model "$exp/avg.pt" --manifest "$data/manifests/$s.jsonl" --out-dir "$exp/decode" --name "$s"
        done
        $asr tune-lm --model "$exp/avg.pt" --manifest "$data/manifests/dev-clean.jsonl" --lm "$data/lm" \
            --beam "$tune_beam" --trials "$tune_trials" --lexicon "$lexicon" --out-dir "$exp/decode" \
            --decode-workers "$decode_workers"
        for s in $sets; do
            $asr decode --model "$exp/avg.pt" --manifest "$data/manifests/$s.jsonl" --out-dir "$exp/decode" \
                --name "$s-lm" --lm "$data/lm" --tuned "$exp/decode/tune-lm-dev-clean.json" --beam "$beam" \
                --lexicon "$lexicon" --decode-workers "$decode_workers"
        done
    done
    # shellcheck disable=SC2086
    $python "$here/local/results.py" --data "$data" --beam "$beam" --models $models > "$data/RESULTS.md"
    done_stage 7
fi
[ -f "$data/RESULTS.md" ] && { echo; cat "$data/RESULTS.md"; }

if run_stage 8 "validate"; then
    # shellcheck disable=SC2086
    $python "$here/local/validate.py" --data "$data" --models $models
    done_stage 8
fi
echo
echo "recipe finished in $(( (SECONDS - start_time) / 60 )) min $(( (SECONDS - start_time) % 60 )) s; outputs under $data"
