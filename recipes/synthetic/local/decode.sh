# The offline recipe's decoding of one model (sourced by run.sh and finetune.sh, not run).
# Needs: $asr, $data and conf/<size>.sh's $beam, $tune_beam, $tune_trials, $lexicon and $jobs,
# and DATA/lm, DATA/dev-mixed.jsonl.
#
#   decode_model DATA/exp/bilstm DATA/test.jsonl DATA/8k/test.jsonl ...
#
# tunes the LM weights on the mixed dev set, then decodes each manifest greedy and with beam
# search + LM into MODEL_DIR/decode, named by its path under DATA (8k/uqm/test -> uqm-test-8k).

decode_model() {  # decode_model MODEL_DIR MANIFEST...
    local out=$1/decode ckpt=$1/best.pt manifest name
    shift
    $asr tune-lm --model "$ckpt" --manifest "$data/dev-mixed.jsonl" --lm "$data/lm" --name dev-mixed \
        --beam "$tune_beam" --lexicon "$lexicon" --trials "$tune_trials" --out-dir "$out" --decode-workers "$jobs"
    for manifest in "$@"; do
        name=$(realpath --relative-to="$data" "${manifest%.jsonl}" | sed 's|^8k/\(.*\)|\1-8k|; s|/|-|g')
        $asr decode --model "$ckpt" --manifest "$manifest" --out-dir "$out" --name "$name-lm" --greedy-name "$name" \
            --lm "$data/lm" --tuned "$out/tune-lm-dev-mixed.json" --beam "$beam" --lexicon "$lexicon" \
            --decode-workers "$jobs"
    done
}
