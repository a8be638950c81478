#!/usr/bin/env bash
# Fuzzes every target for SECONDS each and says, per target, how many inputs ran and
# whether one crashed, hung or ran out of memory. Exits 1 when any target did.
# Usage: fuzz/run.sh SECONDS [TARGET...]
# FUZZ_EXTRA_ARGS adds libFuzzer flags (e.g. "-fork=2 -ignore_crashes=1").
set -uo pipefail

seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$fuzz_dir/.." && pwd)"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(reader decoder analyze)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || exit 2
fi
# The fuzz crate resolves pawscope's dependencies to the versions pawscope pins.
if [ ! -f "$fuzz_dir/Cargo.lock" ] && [ -f "$repo/Cargo.lock" ]; then
    cp "$repo/Cargo.lock" "$fuzz_dir/Cargo.lock"
fi
bash "$fuzz_dir/seeds.sh" "${targets[@]}" || exit 2

cd "$repo" || exit 2
echo "building fuzz targets"
if ! cargo +nightly fuzz build; then
    echo "fuzz targets did not build" >&2
    exit 2
fi

logs="$fuzz_dir/artifacts/logs"
mkdir -p "$logs"
failed=0
summary=()
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    echo "fuzzing $target for ${seconds}s (log: ${log#"$repo"/})"
    # shellcheck disable=SC2086
    cargo +nightly fuzz run "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 ${FUZZ_EXTRA_ARGS:-} >"$log" 2>&1
    status=$?
    execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')"
    [ -n "$execs" ] || execs="$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1 | grep -o '[0-9]*')"
    # -fork=N prints "#N: cov: ..." status lines instead of final stats.
    [ -n "$execs" ] || execs="$(grep -oE '^#[0-9]+:' "$log" | tail -n 1 | tr -d '#:')"
    coverage="$(grep -E '^#[0-9]+' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+(/[0-9]+[a-zA-Z]*)?' || true)"
    outcome="no crash"
    if grep -q 'ERROR: libFuzzer: timeout\|SUMMARY: libFuzzer: timeout' "$log"; then
        outcome="HANG (timeout)"
    elif grep -q 'out-of-memory\|SUMMARY: libFuzzer: out-of-memory' "$log"; then
        outcome="OUT OF MEMORY"
    elif grep -q 'deadly signal\|panicked at\|ERROR: AddressSanitizer' "$log"; then
        outcome="CRASH"
    elif [ "$status" -ne 0 ]; then
        outcome="FAILED (exit $status)"
    fi
    artifact="$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //')"
    line="$target: ${execs:-?} executions, ${coverage:-no coverage line}, $outcome"
    [ -n "$artifact" ] && line="$line, input: $artifact"
    if [ "$outcome" != "no crash" ]; then
        failed=1
        grep -m 1 -A 2 'panicked at' "$log" || true
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "summary"
for line in "${summary[@]}"; do
    echo "  $line"
done
exit "$failed"
