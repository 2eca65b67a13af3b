#!/usr/bin/env bash
# Fuzz every parser of outside data with cargo-fuzz (libFuzzer), each target for a
# bounded time. Needs the nightly toolchain; installs cargo-fuzz from crates.io if
# missing. The stable test suite's smoke run is tests/garbage_input.rs.
#
#   bash scripts/fuzz.sh                 # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh config web_config
#
# Seeds: fuzz/corpus/<target>/seed-*. New inputs go to fuzz/work/<target>/ (ignored
# by git); a crash is saved under fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    # Every target in fuzz/fuzz_targets/ (each is a [[bin]] of fuzz/Cargo.toml).
    for f in fuzz/fuzz_targets/*.rs; do
        t=$(basename "$f" .rs)
        grep -q "^name = \"$t\"$" fuzz/Cargo.toml \
            || { echo "fuzz: $f is not a [[bin]] of fuzz/Cargo.toml" >&2; exit 1; }
        TARGETS+=("$t")
    done
fi

if ! rustc +nightly --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/work/$t"
    echo "fuzz: $t for ${SECONDS_EACH}s"
    (cd fuzz && cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1)
done
