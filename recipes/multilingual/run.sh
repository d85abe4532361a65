#!/usr/bin/env bash
# The offline multilingual recipe: one language of conf/languages.tsv (a language is a row there,
# not code) from Debian text and espeak-ng's voices to a BiLSTM CTC model, scored on held-out
# synthetic voices and, where Debian has them, on one recorded telephone speaker (Asterisk's prompts).
#
#   bash recipes/multilingual/run.sh --language es|fr|ru|de|zh [--size demo] [--data DIR]
#        [--unpacked DIR] [--stage N] [--stop-stage N] [--set NAME=VALUE]...
#
# Stages (each leaves DATA/.done/<stage> and is skipped on a rerun):
#   1  fetch the row's Debian packages (tools/apt_fetch.py, no root) and unpack them, or use
#      --unpacked DIR (a tree holding the files the row names)
#   2  sentences from the row's text files (local/extract_text.py): train, dev, test
#   3  synthesize train (espeak-ng voices and variants but two, and RHVoice's voices but two where the
#      row names an RHVoice package) and dev/test (the ones held out)
#   4  the recorded test set: the Asterisk prompts with their transcripts (local/prompts.py)
#   5  train the BiLSTM (units: the characters of the training sentences) (DATA/exp/bilstm); where the
#      row names a romanization (zh: pinyin), its first warm_minutes train on the romanized text
#      (local/romanize.py; DATA/exp/bilstm-pinyin) and the character model starts from that encoder
#   6  a word n-gram LM from the training sentences (a character n-gram for a language written
#      without spaces: the beam search then scores each character as a word)
#   7  decode test and the prompts greedy and with beam search + LM (alpha/beta tuned on dev);
#      write DATA/RESULTS.md
# Sizes live in recipes/multilingual/conf/<size>.sh (demo: conf/bilstm.yaml); a size may spend its
# budget differently per language ($lang is set when it is read). --set overrides one of its settings
# for an experiment (--set train_hours=8 --set bilstm_minutes=18).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
size=demo
stage=1
stop_stage=100
data=""
lang=""
unpacked=""
overrides=()
while [ $# -gt 0 ]; do
    case "$1" in
        --language) lang=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --unpacked) unpacked=$2; shift 2 ;;
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --set) overrides+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$here/conf/$size.sh" ] || { echo "error: no size '$size' (conf/$size.sh missing)" >&2; exit 2; }
row=$(awk -F'\t' -v l="$lang" '$1 == l' "$here/conf/languages.tsv")
[ -n "$lang" ] && [ -n "$row" ] || {
    echo "error: --language must be one of: $(grep -v '^#' "$here/conf/languages.tsv" | cut -f1 | tr '\n' ' ')" >&2
    exit 2
}
IFS=$'\t' read -r _ script voices text_packages text_files prompt_packages prompt_sounds rhvoice warm <<< "$row"
# shellcheck source=/dev/null
source "$here/conf/$size.sh"
# shellcheck source=../stages.sh
source "$here/../stages.sh"
apply_overrides "conf/$size.sh" "${overrides[@]}"
data=${data:-$root/data/multilingual-$lang-$size}
python=${PYTHON:-python}
asr="$python -m asr.cli"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
start_time=$SECONDS
spaces=$($python -c "import sys; from asr.text import language; print(int(language(sys.argv[1]).spaces))" "$lang")
tree=${unpacked:-$data/debian/unpacked}
mkdir -p "$data/.done"

packages="$text_packages"
[ "$prompt_packages" != - ] && packages="$packages $prompt_packages"
rhvoice_args=()
if [ "${rhvoice:--}" != - ]; then   # package:held-out,voices; the engine's own packages beside it
    packages="$packages $($python -c "from tools.rhvoice_tts import CORE_PACKAGES; print(*CORE_PACKAGES)") ${rhvoice%%:*}"
    IFS=, read -ra held <<< "${rhvoice#*:}"
    rhvoice_args=(--rhvoice-tree "$tree" --rhvoice-heldout "${held[@]}")
fi
if run_stage 1 "the Debian packages for $lang: $packages"; then
    if [ -z "$unpacked" ]; then
        # shellcheck disable=SC2086
        $python "$root/tools/apt_fetch.py" --cache "$data/debian" --out "$data/debian/debs" $packages
        mkdir -p "$tree"
        for deb in "$data"/debian/debs/*.deb; do dpkg-deb -x "$deb" "$tree"; done
    fi
    command -v espeak-ng >/dev/null || { echo "error: espeak-ng not found; run 'make setup'" >&2; exit 1; }
    done_stage 1
fi

if run_stage 2 "sentences ($script script) from $text_files"; then
    read -ra patterns <<< "$text_files"   # not expanded here: extract_text.py globs them
    globs=()
    for g in "${patterns[@]}"; do globs+=("$tree/$g"); done
    $python "$here/local/extract_text.py" --language "$lang" --script "$script" --files "${globs[@]}" \
        --out "$data/text" --dev "$dev_utts" --test "$test_utts" --seed "$seed"
    done_stage 2
fi

if run_stage 3 "synthesize with espeak-ng $voices${rhvoice_args:+ and RHVoice (${rhvoice%%:*})}"; then
    # shellcheck disable=SC2086
    $python "$root/recipes/synthetic/local/synthesize.py" --text "$data/text/train.txt" --voices train \
        --hours "$train_hours" --out-dir "$data/wav/train" --manifest "$data/train.jsonl" --jobs "$jobs" \
        --seed "$seed" --warp "$warp" --language "$lang" --espeak-bases $voices "${rhvoice_args[@]}" \
        --cache "$data/tts-cache" --no-progress
    for part in dev test; do
        # shellcheck disable=SC2086
        $python "$root/recipes/synthetic/local/synthesize.py" --text "$data/text/$part.txt" --voices heldout \
            --out-dir "$data/wav/$part" --manifest "$data/$part.jsonl" --jobs "$jobs" --seed "$seed" \
            --language "$lang" --espeak-bases $voices "${rhvoice_args[@]}" --cache "$data/tts-cache" \
            --no-progress
    done
    done_stage 3
fi

test_sets="test"
[ "$prompt_sounds" != - ] && test_sets="test prompts"
if run_stage 4 "the recorded test set: ${prompt_sounds/#-/none}"; then
    if [ "$prompt_sounds" != - ]; then
        $python "$here/local/prompts.py" --text "$tree/usr/share/doc/asterisk-core-sounds-$lang/core-sounds-$lang.txt.gz" \
            --sounds "$tree/usr/share/asterisk/sounds/$prompt_sounds" --language "$lang" \
            --chars "$data/text/train.txt" --out "$data/prompts.jsonl"
    fi
    done_stage 4
fi

units_of() {  # units_of FILE...: the characters of text files' lines and manifests' texts, normalized
    $python - "$lang" "$@" <<'PY'
import json, sys
from asr.text import normalize, units_from_texts
lang, texts = sys.argv[1], []
for path in sys.argv[2:]:
    for line in open(path, encoding="utf-8").read().splitlines():
        texts.append(normalize(json.loads(line)["text"] if path.endswith(".jsonl") else line, lang))
print(units_from_texts(texts), end="")
PY
}

train_bilstm() {  # train_bilstm OUT_DIR MINUTES UNITS TRAIN DEV [ARG...]
    local out=$1 minutes=$2 units=$3 train=$4 dev=$5
    shift 5
    $asr train --config "$here/$bilstm_config" --text.language "$lang" --vocabulary "$units" \
        --train.train_manifest "$train" --train.dev_manifest "$dev" --train.out_dir "$out" \
        --train.epochs "$epochs" --train.max_minutes "$minutes" --train.eval_every "$eval_every" \
        --train.seed "$seed" "$@"
}

[ "${warm:--}" != - ] || warm_minutes=0
label="train the BiLSTM model ($bilstm_minutes min)"
[ "$warm_minutes" = 0 ] || label="train the BiLSTM model ($bilstm_minutes min, the first $warm_minutes on $warm)"
if run_stage 5 "$label"; then
    init=()
    if [ "$warm_minutes" != 0 ]; then   # a warm start: the romanized text first, then the characters
        for part in train dev; do
            $python "$here/local/romanize.py" --scheme "$warm" "$data/$part.jsonl" "$data/$warm/$part.jsonl"
        done
        train_bilstm "$data/exp/bilstm-$warm" "$warm_minutes" "$(units_of "$data/$warm"/{train,dev}.jsonl)" \
            "$data/$warm/train.jsonl" "$data/$warm/dev.jsonl"
        init=(--train.init_from "$data/exp/bilstm-$warm/best.pt" --train.init_head false)
    fi
    train_bilstm "$data/exp/bilstm" "$((bilstm_minutes - warm_minutes))" "$(units_of "$data/text/train.txt")" \
        "$data/train.jsonl" "$data/dev.jsonl" "${init[@]}"
    done_stage 5
fi

lm_units=word order=$lm_order
[ "$spaces" = 1 ] || { lm_units=char; order=$char_lm_order; }   # written without spaces: characters are its words
if run_stage 6 "a ${order}-gram $lm_units LM from the training sentences"; then
    $asr lm build --text "$data/text/train.txt" --language "$lang" --units "$lm_units" --order "$order" --out "$data/lm"
    $asr lm eval --lm "$data/lm" --text "$data/text/dev.txt" --language "$lang"
    done_stage 6
fi

if run_stage 7 "decode $test_sets"; then
    exp="$data/exp/bilstm"
    $asr tune-lm --model "$exp/best.pt" --manifest "$data/dev.jsonl" --lm "$data/lm" --name dev \
        --beam "$tune_beam" --trials "$tune_trials" --out-dir "$exp/decode" --decode-workers "$jobs" --lexicon "$lexicon"
    for s in $test_sets; do
        $asr decode --model "$exp/best.pt" --manifest "$data/$s.jsonl" --out-dir "$exp/decode" --name "$s-lm" \
            --greedy-name "$s" --lm "$data/lm" --tuned "$exp/decode/tune-lm-dev.json" --beam "$beam" \
            --decode-workers "$jobs" --lexicon "$lexicon"
    done
    # shellcheck disable=SC2086
    $python "$root/tools/wer_table.py" --title "multilingual recipe, $lang ($size)" --language "$lang" \
        --beam "$beam" --sets $test_sets --exp "$exp" --lm "$data/lm" > "$data/RESULTS.md"
    done_stage 7
fi
[ -f "$data/RESULTS.md" ] && { echo; cat "$data/RESULTS.md"; }
echo
echo "recipe finished in $(( (SECONDS - start_time) / 60 )) min $(( (SECONDS - start_time) % 60 )) s; outputs under $data"
