#!/usr/bin/env bash
# Runs the whole test suite under a sanitizer, and says what it found.
#
#     scripts/sanitize.sh address        # AddressSanitizer (and LeakSanitizer's report, see below)
#     scripts/sanitize.sh thread         # ThreadSanitizer
#     scripts/sanitize.sh address thread # one after the other
#     scripts/sanitize.sh thread -- --filter CynicRuntimeTests   # what follows -- goes to swift test
#
# Each sanitizer builds into its own folder (.build-address, .build-thread), so the usual .build
# is left alone; the first build takes several minutes. The cynic binary the CLI tests start,
# the shipped plugins it loads and the test process itself are all built with the sanitizer.
#
# Every report goes to a file (ASAN_OPTIONS / TSAN_OPTIONS log_path), so that a report from a
# child cynic is not lost in the test's captured output: the script counts them, prints the
# first lines of each distinct one, and exits 1 when there is any, or when the suite failed.
# Reports stay in .build-SANITIZER/reports/ for reading. Leaks are listed but do not fail the
# run: a process that exits leaves its long-lived objects (event loops, the plugin registry)
# allocated by design.
set -uo pipefail
cd "$(dirname "$0")/.."

sanitizers=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        address|thread) sanitizers+=("$1") ;;
        --) shift; extra=("$@"); break ;;
        *) echo "scripts/sanitize.sh: unknown sanitizer '$1' (address or thread)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(address thread)

status=0
for sanitizer in "${sanitizers[@]}"; do
    scratch=".build-$sanitizer"
    reports="$scratch/reports"
    rm -rf "$reports"
    mkdir -p "$reports"
    reports_abs="$(cd "$reports" && pwd)"
    link=()
    case "$sanitizer" in
        address)
            # Leaks are reported at exit by LeakSanitizer into the same files; halt at the first
            # real error (a use after free, an overflow), as a crash would. The quarantine of
            # freed memory is 32 MiB, not ASan's 256: the suite's memory tests bound cynic's RSS
            # while gigabytes stream through it (64 MiB), and a full default quarantine alone
            # would pass that bound.
            export ASAN_OPTIONS="log_path=$reports_abs/asan:detect_leaks=1:halt_on_error=1:abort_on_error=0:quarantine_size_mb=32"
            export LSAN_OPTIONS="exitcode=0"  # a leak is listed, not a failed test
            ;;
        thread)
            # Go on after a report (every race in one run), and make a process with a report exit 66.
            export TSAN_OPTIONS="log_path=$reports_abs/tsan:halt_on_error=0:exitcode=66:report_signal_unsafe=0"
            # The runtime is linked into each executable, which exports what clang's list of the
            # runtime's symbols names; Swift's instrumentation also calls these, so a Swift
            # plugin dlopen'ed by a TSan cynic would be refused ("undefined symbol:
            # __tsan_external_write") without them.
            for symbol in __tsan_external_read __tsan_external_write __tsan_ignore_thread_begin __tsan_ignore_thread_end; do
                link+=(-Xlinker "--export-dynamic-symbol=$symbol")
            done
            ;;
    esac
    # A Swift crash under a sanitizer: no backtracer (its own fork and ptrace fight the runtime).
    export SWIFT_BACKTRACE=enable=no
    started=$(date +%s)
    echo "== swift test --sanitize=$sanitizer --scratch-path $scratch ${extra[*]:-}"
    swift test --sanitize="$sanitizer" --scratch-path "$scratch" "${link[@]}" "${extra[@]}" 2>&1 | tee "$scratch/test.log" | tail -n 40
    suite=${PIPESTATUS[0]}
    seconds=$(( $(date +%s) - started ))
    files=$(find "$reports" -type f | wc -l)
    # An error is AddressSanitizer's (LeakSanitizer's own "ERROR: LeakSanitizer" is a leak) or a
    # ThreadSanitizer warning (a race, a lock misused).
    errors=$(grep -l "ERROR: AddressSanitizer\|WARNING: ThreadSanitizer\|ERROR: ThreadSanitizer" "$reports"/* 2>/dev/null | wc -l)
    leaks=$(grep -l "ERROR: LeakSanitizer" "$reports"/* 2>/dev/null | wc -l)
    echo "== $sanitizer: suite exit $suite after $seconds s; $files report files: $errors with errors or races, $leaks with leaks only"
    if [ "$errors" -gt 0 ]; then
        grep -h "SUMMARY:" "$reports"/* | sort | uniq -c | sort -rn | head -n 20
        status=1
    fi
    if [ "$leaks" -gt 0 ]; then
        echo "   leaks (not a failure):"
        grep -h "SUMMARY: AddressSanitizer: .* leaked" "$reports"/* | sort | uniq -c | sort -rn | head -n 5
    fi
    [ "$suite" -eq 0 ] || status=1
done
exit $status
