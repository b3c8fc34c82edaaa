#!/usr/bin/env bash
# Fuzzes one of wsgate's parsers with libFuzzer for a bounded time:
#
#     scripts/fuzz.sh TARGET SECONDS        TARGET: handshake | frames | config | proxy-protocol
#     scripts/fuzz.sh all SECONDS           each target in turn
#
# Builds wsgate-fuzz with libFuzzer and AddressSanitizer (in .build/fuzz, apart from normal builds),
# starts from the committed seeds in Tests/fuzz-corpus/TARGET (new finds go to .build/fuzz-corpus),
# and prints libFuzzer's summary: executions per second and coverage (cov: edges, ft: features).
# A crash leaves its input in .build/fuzz-crashes/; add it to Tests/fuzz-corpus/TARGET so
# `make test` replays it from then on, and fix the bug.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
seconds="${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}"
targets=(handshake frames config proxy-protocol)
if [[ "$target" == all ]]; then
    for t in "${targets[@]}"; do "$0" "$t" "$seconds"; done
    exit 0
fi
[[ " ${targets[*]} " == *" $target "* ]] || { echo "unknown target '$target' (${targets[*]})" >&2; exit 2; }

scripts/install-packages.sh libnghttp2-dev zlib1g-dev libcrypt-dev pkg-config
swiftc_dir="$(dirname "$(readlink -f "$(command -v swiftc)")")"
fuzzer_lib="$(ls "$swiftc_dir"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1)"
[[ -n "$fuzzer_lib" ]] || { echo "libFuzzer (libclang_rt.fuzzer_no_main) not found next to swiftc" >&2; exit 1; }

echo "== building wsgate-fuzz with libFuzzer + ASan (first build takes a few minutes)"
swift build --scratch-path .build/fuzz --product wsgate-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xswiftc -use-ld=lld -Xlinker --undefined=LLVMFuzzerRunDriver -Xlinker "$fuzzer_lib" -Xlinker -lstdc++ 2>&1 | grep -E "error|warning: unre|Compiling wsgate|Build" || true
binary=.build/fuzz/debug/wsgate-fuzz
# Swift's backtracer reads memory ASan then reports instead of the real trap.
export SWIFT_BACKTRACE=enable=no
[[ -x "$binary" ]] || { echo "build failed" >&2; exit 1; }

corpus=".build/fuzz-corpus/$target"
mkdir -p "$corpus" .build/fuzz-crashes
dict=()
[[ -f "Tests/fuzz-corpus/$target.dict" ]] && dict=(-dict="Tests/fuzz-corpus/$target.dict")
echo "== fuzzing $target for ${seconds}s"
set +e
"$binary" "$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix=".build/fuzz-crashes/$target-" "${dict[@]}" "$corpus" "Tests/fuzz-corpus/$target" 2>&1 | tee ".build/fuzz-$target.log" \
    | grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|ERROR|SUMMARY|Fatal error|Precondition failed|stat::number_of_executed_units|stat::average_exec_per_sec|Test unit written" | tail -8
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
    echo "FAIL: $target crashed; input in .build/fuzz-crashes/ (log: .build/fuzz-$target.log)" >&2
    exit 1
fi
echo "OK: $target, no crash in ${seconds}s"
