#!/usr/bin/env bash
# Builds the fuzz harnesses (fuzz/) with libFuzzer and AddressSanitizer and runs each for a
# bounded time from its committed seed corpus (fuzz/corpus/TARGET), then prints one line per
# target: executions, seconds, corpus size, the coverage libFuzzer reports, and what it found.
#
#   scripts/fuzz.sh [--seconds N] [--release] [--merge] [--build-only] [TARGET...]
#
# --seconds N   how long each target runs (default 300)
# --release     build the Swift harnesses optimized (longer to build, more executions a second)
# --merge       afterwards, minimize what the run found into the committed corpus (libFuzzer -merge=1)
# --build-only  build, do not run
# TARGET        any of the targets below; all by default
#
# A run keeps its working corpus and its findings in fuzz/.work/TARGET/ (not committed): a
# crash, hang or out-of-memory input is saved there as crash-*, timeout-*, oom-*, and the
# script exits 1. Each finding becomes a regression test in the decoder's test target.
# The fuzzers are not part of `swift test` or .ci/run (too long); a test there sends every
# committed corpus file through its decoder (FuzzCorpusTests in each test target).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# target  harness (a product of fuzz/Package.swift, or "c:" and the C harness's source)
targets=(
    "log-frames FuzzLogFrames"
    "log-json FuzzLogJSON"
    "log-pickle FuzzLogPickle"
    "config FuzzConfig"
    "control-body FuzzControlBody"
    "http-request FuzzHTTPRequest"
    "tls-client-hello c:fuzz/tls-client-hello/fuzz_tls_client_hello.c"
)

seconds=300 configuration=debug merge=no run=yes chosen=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=${2:?--seconds needs a number}; shift ;;
        --seconds=*) seconds=${1#--seconds=} ;;
        --release) configuration=release ;;
        --merge) merge=yes ;;
        --build-only) run=no ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) chosen+=("$1") ;;
    esac
    shift
done
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: --seconds expects a whole number, got '$seconds'" >&2; exit 2 ;; esac

harness_of() {
    for entry in "${targets[@]}"; do
        set -- $entry
        if [ "$1" = "$TARGET" ]; then echo "$2"; return; fi
    done
}
if [ ${#chosen[@]} -eq 0 ]; then
    for entry in "${targets[@]}"; do chosen+=("${entry%% *}"); done
fi
for TARGET in "${chosen[@]}"; do
    if [ -z "$(harness_of)" ]; then
        echo "fuzz.sh: unknown target '$TARGET' (known: $(for e in "${targets[@]}"; do printf '%s ' "${e%% *}"; done))" >&2
        exit 2
    fi
done

work="$root/fuzz/.work"
bin="$work/bin-$configuration"
mkdir -p "$bin"

# The toolchain's clang: its libFuzzer and sanitizer runtimes are the ones Swift links.
clang=$(dirname "$(command -v swift)")/clang
swift_flags=(-c "$configuration" --package-path fuzz
             -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing)

build() {
    local harness=$1
    case "$harness" in
        c:*)
            local source=${harness#c:}
            "$clang" -g -O1 -fsanitize=fuzzer,address -fuse-ld=lld -I plugins/tls-client-hello \
                -o "$bin/$TARGET" "$source" plugins/tls-client-hello/tls-client-hello.c
            ;;
        *)
            swift build "${swift_flags[@]}" --product "$harness"
            cp "$(swift build "${swift_flags[@]}" --show-bin-path)/$harness" "$bin/$TARGET"
            ;;
    esac
}

for TARGET in "${chosen[@]}"; do
    echo "== building $TARGET ($configuration)"
    build "$(harness_of)"
done
[ "$run" = yes ] || exit 0

summary=()
found_any=no
for TARGET in "${chosen[@]}"; do
    corpus="$root/fuzz/corpus/$TARGET"
    dir="$work/$TARGET"
    # A run counts its own findings: an earlier run's are moved aside, not lost.
    if [ -n "$(ls -A "$dir/findings" 2>/dev/null)" ]; then mv "$dir/findings" "$dir/findings-before-$(date +%Y%m%d-%H%M%S)"; fi
    mkdir -p "$dir/corpus" "$dir/findings"
    log="$dir/last-run.log"
    echo "== fuzzing $TARGET for ${seconds}s (log: ${log#"$root"/})"
    # One process (one core): the machine is shared. New inputs go to the working corpus, the
    # first folder; the committed seeds are read, never written.
    status=0
    started=$(date +%s)
    # Swift's backtracer would read the aborted process's memory, which ASan reports as a
    # second, unrelated crash.
    SWIFT_BACKTRACE=enable=no "$bin/$TARGET" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/findings/" "$dir/corpus" "$corpus" >"$log" 2>&1 || status=$?
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    coverage=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\)\/\([^ ]*\).*/\1 edges, \2 features, corpus \3 (\4)/p')
    took=$(( $(date +%s) - started ))
    findings=$(ls "$dir/findings" | wc -l)
    if [ "$status" -ne 0 ] || [ "$findings" -gt 0 ]; then found_any=yes; fi
    line="$TARGET: ${executions:-?} executions in $took s; ${coverage:-no coverage line}; findings: $findings (exit $status)"
    echo "$line"
    summary+=("$line")
    if [ "$merge" = yes ]; then
        "$bin/$TARGET" -merge=1 -max_len=4096 "$corpus" "$dir/corpus" >"$dir/merge.log" 2>&1
        echo "   merged into fuzz/corpus/$TARGET: $(ls "$corpus" | wc -l) files"
    fi
done

echo
echo "== summary ($configuration, ${seconds}s each)"
printf '%s\n' "${summary[@]}" | tee "$work/summary.txt"
if [ "$found_any" = yes ]; then
    echo "findings are in fuzz/.work/TARGET/findings/: make each a regression test" >&2
    exit 1
fi
