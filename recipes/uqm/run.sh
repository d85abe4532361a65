#!/usr/bin/env bash
# The Ur-Quan Masters recipe: 11 h of recorded, acted English speech (27 characters) from
# Debian non-free, cut into line utterances with a fixed speaker-disjoint split.
#
#   bash recipes/uqm/run.sh [--stage N] [--stop-stage N] [--data DIR] [--jobs N]
#                           [--align-model CKPT [--align-keep Q]]
#
# Stages (each leaves DATA/.done/<stage> and is skipped on a rerun):
#   0  download uqm-voice and uqm-content with apt-get download through a private apt
#      configuration under DATA/apt (no root, the system's sources untouched)
#   1  extract the packages (dpkg -x) and unzip their .uqm archives
#   2  cut each dialogue line at the .ts timings, clean and normalize its text, write
#      DATA/{train,dev,test}.jsonl (dev: shofixti, supox; test: syreen, spathi, yehat,
#      thraddash; train: the other 21 characters) and DATA/text/*.txt
#   3  check the manifests: every line's audio opens and its text fits the vocabulary
#   4  with --align-model (a model that has heard UQM speech): re-cut every line where the
#      model's forced alignment puts its words, drop lines whose text fits their audio no
#      better than the --align-keep quantile (0.95) of other lines' texts does; DATA/aligned/
# Licence: CC BY-NC-SA 2.5 (printed by stage 2); the data stays under DATA, out of git.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
stage=0
stop_stage=100
data=""
jobs=2
align_model=""
align_keep=0.95
while [ $# -gt 0 ]; do
    case "$1" in
        --stage) stage=$2; shift 2 ;;
        --stop-stage) stop_stage=$2; shift 2 ;;
        --data) data=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --align-model) align_model=$2; shift 2 ;;
        --align-keep) align_keep=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
data=${data:-$root/data/uqm}
mkdir -p "$data/.done"
python=${PYTHON:-python}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"

# shellcheck source=../stages.sh
source "$here/../stages.sh"

if run_stage 0 "download uqm-voice and uqm-content (Debian non-free, private apt configuration)"; then
    $python "$root/tools/apt_fetch.py" --cache "$data" --out "$data/downloads" uqm-voice uqm-content
    done_stage 0
fi

if run_stage 1 "extract the packages"; then
    rm -rf "$data/extract"
    mkdir -p "$data/extract/deb" "$data/extract/voice" "$data/extract/content"
    for deb in "$data"/downloads/uqm-voice_*.deb "$data"/downloads/uqm-content_*.deb; do
        dpkg -x "$deb" "$data/extract/deb"
    done
    voice_zip=$(find "$data/extract/deb" -name '*voice*.uqm' | head -n1)
    content_zip=$(find "$data/extract/deb" -name '*content*.uqm' | head -n1)
    [ -n "$voice_zip" ] && [ -n "$content_zip" ] || { echo "error: no *voice*.uqm or *content*.uqm in the packages" >&2; exit 1; }
    $python -m zipfile -e "$voice_zip" "$data/extract/voice"
    $python -m zipfile -e "$content_zip" "$data/extract/content"
    rm -rf "$data/extract/deb"
    done_stage 1
fi

if run_stage 2 "cut the lines, normalize, write the speaker-split manifests"; then
    $python "$here/local/prepare_uqm.py" --voice "$data/extract/voice" --content "$data/extract/content" \
        --out "$data" --jobs "$jobs"
    done_stage 2
fi

if run_stage 3 "check the manifests"; then
    for part in train dev test; do
        $python -m asr.cli manifest check "$data/$part.jsonl"
    done
    done_stage 3
fi

if [ -n "$align_model" ] && run_stage 4 "re-cut the lines at the words of a forced alignment, drop lines that do not match"; then
    $python "$here/local/realign.py" --model "$align_model" --voice "$data/extract/voice" \
        --content "$data/extract/content" --out "$data/aligned" --keep "$align_keep"
    done_stage 4
fi
