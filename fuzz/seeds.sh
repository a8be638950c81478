#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ (ignored by git) with the bundled samples, the shared reader
# corpus beside the checkout when it is there, and each sample cut to its first 2 KB.
# Inputs kept in fuzz/regressions/<target>-* are added too, so a run checks them first;
# FUZZ_SKIP_REGRESSIONS=1 leaves them out (to fuzz past a finding not fixed yet).
# Usage: fuzz/seeds.sh [TARGET...]   (default: reader decoder analyze)
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$fuzz_dir/.." && pwd)"
shared="$repo/../shared/corpus"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(reader decoder analyze)

for target in "${targets[@]}"; do
    dir="$fuzz_dir/corpus/$target"
    mkdir -p "$dir"
    count=0
    for sample in "$repo"/samples/*.pcap; do
        [ -f "$sample" ] || continue
        name="$(basename "$sample")"
        cp -f "$sample" "$dir/sample-$name"
        head -c 2048 "$sample" > "$dir/sample-2k-$name"
        count=$((count + 2))
    done
    if [ -d "$shared" ]; then
        for file in "$shared"/*; do
            [ -f "$file" ] || continue
            name="$(basename "$file")"
            cp -f "$file" "$dir/shared-$name"
            chmod u+w "$dir/shared-$name"
            count=$((count + 1))
        done
    fi
    # Earlier findings stay in the corpus so every run checks them again.
    if [ -d "$fuzz_dir/regressions" ] && [ "${FUZZ_SKIP_REGRESSIONS:-0}" != 1 ]; then
        for file in "$fuzz_dir/regressions/$target"-*; do
            [ -f "$file" ] || continue
            cp -f "$file" "$dir/"
            count=$((count + 1))
        done
    fi
    echo "seeds: $target: $count files in corpus/$target/"
done
