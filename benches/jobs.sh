#!/usr/bin/env bash
# Wall-clock time of the same two experiments (benches/jobs.lra) trained one after the other
# on every core (`--jobs 1`) and side by side (`--jobs 2`), measured in one run of this script.
# Usage: bash benches/jobs.sh [THREADS]   (default: every core)
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-$(nproc)}"
cargo build --release --quiet
lra=target/release/lra
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Generate the data outside the timings.
"$lra" run benches/jobs.lra --only bench-jobs/seed0 --out "$out/warm" --quiet > /dev/null
for jobs in 1 2; do
    start=$(date +%s.%N)
    "$lra" run benches/jobs.lra --threads "$threads" --jobs "$jobs" --out "$out/jobs$jobs" --quiet > /dev/null
    end=$(date +%s.%N)
    seconds=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
    echo "--jobs $jobs on $threads threads: $seconds s"
    eval "seconds_$jobs=$seconds"
done
echo "speed-up of --jobs 2: $(awk "BEGIN { printf \"%.2f\", $seconds_1 / $seconds_2 }")x"
