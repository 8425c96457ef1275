#!/usr/bin/env bash
# Fuzzes every target for SECONDS (default 600) each, JOBS at a time (default 2), with afl.rs:
#   cargo install cargo-afl && fuzz/run_all.sh [SECONDS] [JOBS]
# Findings land in fuzz/out/TARGET/default/crashes (and hangs); the summary line per target
# comes from afl-fuzz's fuzzer_stats.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
jobs=${2:-2}
cargo afl build --release
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_AUTORESUME=1
targets=(bundle safetensors manifest idx recipe images config tokenizer sentence)
run() {
    local t=$1
    mkdir -p out
    cargo afl fuzz -V "$secs" -t 2000 -i "corpus/$t" -o "out/$t" "target/release/$t" > "out/$t.log" 2>&1 || true
}
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    for t in "${targets[@]:i:jobs}"; do run "$t" & done
    wait
done
for t in "${targets[@]}"; do
    s="out/$t/default/fuzzer_stats"
    if [ -f "$s" ]; then
        awk -v t="$t" -F' *: ' '/^run_time|^execs_done|^corpus_count|^saved_crashes|^saved_hangs|^stability/ {v[$1]=$2} END {printf "%-12s %6ss %10s execs %5s paths %3s crashes %3s hangs, stability %s\n", t, v["run_time"], v["execs_done"], v["corpus_count"], v["saved_crashes"], v["saved_hangs"], v["stability"]}' "$s"
    else
        echo "$t: no stats (see out/$t.log)"
    fi
done
