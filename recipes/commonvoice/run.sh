#!/usr/bin/env bash
# Common Voice recipe, any language: a release's TSVs and MP3 clips -> manifests -> units from the
# training text -> BiLSTM and streaming CTC models -> word n-gram LM from the release's sentences
# -> greedy and beam search + LM on dev and test -> RESULTS.md (WER and CER; CER alone for
# languages written without spaces).
#
#   bash recipes/commonvoice/run.sh --release DIR [--language L] [--data DIR] [--conf default|test]
#        [--stage N] [--stop-stage N]
#
# DIR is one language of a release as Mozilla ships it (download it yourself: it needs an
# account), e.g. cv-corpus-17.0-2024-03-15/de with train.tsv, dev.tsv, test.tsv, validated.tsv
# and clips/*.mp3. L defaults to DIR's name (de, fr, zh-CN, ...).
# Stages (each leaves DATA/.done/<stage> and is skipped on a rerun):
#   1  manifests of train, dev and test (asr manifest commonvoice; the text normalized in L,
#      clips that do not open or lines left empty are reported and skipped)
#   2  the LM text (validated.tsv's sentences but dev's and test's), the units (every character
#      of the release's sentences) and a word n-gram LM (characters for a language written
#      without spaces: the beam search then scores each character as a word)
#   3  train the BiLSTM model   (DATA/exp/bilstm)
#   4  train the streaming model (DATA/exp/streaming)
#   5  decode dev and test greedy, tune alpha/beta on dev and decode with beam search + LM;
#      write DATA/RESULTS.md
# Settings: recipes/commonvoice/conf/<conf>.sh; models: conf/*.yaml.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
conf=default
stage=1
stop_stage=100
data=""
release=""
language=""
while [ $# -gt 0 ]; do
    case "$1" in
        --release) release=$2; shift 2 ;;
        --language) language=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --conf) conf=$2; shift 2 ;;
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$release" ] || { echo "error: --release DIR is required (one language of a Common Voice release)" >&2; exit 2; }
for f in train.tsv dev.tsv test.tsv; do
    [ -f "$release/$f" ] || { echo "error: $release/$f missing: not a Common Voice release folder" >&2; exit 2; }
done
[ -d "$release/clips" ] || { echo "error: $release/clips missing: not a Common Voice release folder" >&2; exit 2; }
[ -f "$here/conf/$conf.sh" ] || { echo "error: no conf '$conf' (conf/$conf.sh missing)" >&2; exit 2; }
# shellcheck source=/dev/null
source "$here/conf/$conf.sh"
language=${language:-$(basename "$(cd "$release" && pwd)")}
data=${data:-$root/data/commonvoice-$language}
python=${PYTHON:-python}
asr="$python -m asr.cli"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
start_time=$SECONDS
spaces=$($python -c "import sys; from asr.text import language; print(int(language(sys.argv[1]).spaces))" "$language") ||
    { echo "error: --language $language: not a language code asr knows how to read" >&2; exit 2; }
mkdir -p "$data/.done"
text_args=(--text.language "$language")

# shellcheck source=../stages.sh
source "$here/../stages.sh"

if run_stage 1 "manifests of train, dev and test ($language)"; then
    for split in train dev test; do
        # a release has a few clips that do not open: reported, skipped, the rest written
        $asr manifest commonvoice "$release/$split.tsv" --out "$data/$split.jsonl" --language "$language" ||
            [ -s "$data/$split.jsonl" ] || { echo "error: no usable line in $release/$split.tsv" >&2; exit 1; }
    done
    done_stage 1
fi

lm_units=word order=$lm_order
[ "$spaces" = 1 ] || { lm_units=char; order=$char_lm_order; }   # written without spaces: characters are its words
if run_stage 2 "the LM text, the units and a ${order}-gram $lm_units LM"; then
    $python "$here/local/lm_text.py" --release "$release" --language "$language" --out "$data/text"
    $asr lm build --text "$data/text/lm.txt" --language "$language" --units "$lm_units" --order "$order" \
        --out "$data/lm"
    $asr lm eval --lm "$data/lm" --text "$data/text/dev.txt" --language "$language"
    done_stage 2
fi

n=3
for model in bilstm streaming; do
    if [[ " $models " == *" $model "* ]] && run_stage $n "train the $model model"; then
        config_var="${model}_config" minutes_var="${model}_minutes"
        # shellcheck disable=SC2086
        $asr train --config "$here/${!config_var}" "${text_args[@]}" --vocabulary "$(cat "$data/text/units.txt")" \
            --train.train_manifest "$data/train.jsonl" --train.dev_manifest "$data/dev.jsonl" \
            --train.out_dir "$data/exp/$model" --train.epochs "$epochs" --train.max_minutes "${!minutes_var}" \
            $train_args
        done_stage $n
    fi
    n=$((n + 1))
done

if run_stage 5 "decode dev and test: greedy, beam search + LM"; then
    for model in $models; do
        exp="$data/exp/$model"
        for s in dev test; do
            $asr decode --model "$exp/best.pt" --manifest "$data/$s.jsonl" --out-dir "$exp/decode" --name "$s"
        done
        $asr tune-lm --model "$exp/best.pt" --manifest "$data/dev.jsonl" --lm "$data/lm" --name dev \
            --beam "$tune_beam" --trials "$tune_trials" --out-dir "$exp/decode" --decode-workers "$jobs" \
            --lexicon "$lexicon"
        for s in dev test; do
            $asr decode --model "$exp/best.pt" --manifest "$data/$s.jsonl" --out-dir "$exp/decode" \
                --name "$s-lm" --lm "$data/lm" --tuned "$exp/decode/tune-lm-dev.json" --beam "$beam" \
                --decode-workers "$jobs" --lexicon "$lexicon"
        done
    done
    exps=()
    for model in $models; do exps+=("$data/exp/$model"); done
    $python "$root/tools/wer_table.py" --title "Common Voice ($language)" --language "$language" --beam "$beam" \
        --sets dev test --exp "${exps[@]}" --lm "$data/lm" > "$data/RESULTS.md"
    done_stage 5
fi
[ -f "$data/RESULTS.md" ] && { echo; cat "$data/RESULTS.md"; }
echo
echo "recipe finished in $(( (SECONDS - start_time) / 60 )) min $(( (SECONDS - start_time) % 60 )) s; outputs under $data"
