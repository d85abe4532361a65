# Stage bookkeeping shared by the recipes' run.sh (sourced, not run).
# Needs: $stage and $stop_stage (the range to run) and $data (DATA/.done/<stage> markers).
#
#   if run_stage 3 "train the model"; then ...; done_stage 3; fi
#   apply_overrides conf/demo.sh "${overrides[@]}"   # --set NAME=VALUE, after sourcing the size

log() {  # log N description: a timestamped stage header
    printf '\n[%s] stage %s: %s\n' "$(date +%H:%M:%S)" "$1" "$2"
}

run_stage() {  # run_stage N description: true when stage N must run now
    local n=$1
    [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ] || return 1
    if [ -f "$data/.done/$n" ]; then
        log "$n" "$2 (done already, skipped)"
        return 1
    fi
    log "$n" "$2"
}

done_stage() {  # done_stage N: mark stage N done, so that a rerun skips it
    touch "$data/.done/$1"
}

apply_overrides() {  # apply_overrides CONF NAME=VALUE...: each a setting CONF (sourced) has, or exit 2
    local conf=$1 o
    shift
    for o in "$@"; do
        [[ "$o" == *=* && "${o%%=*}" =~ ^[a-z_]+$ ]] && declare -p "${o%%=*}" >/dev/null 2>&1 ||
            { echo "error: --set $o: not NAME=VALUE for a setting of $conf" >&2; exit 2; }
        printf -v "${o%%=*}" '%s' "${o#*=}"
    done
}
