#!/usr/bin/env bash
# README figure: wall time of one small grid swept with --jobs 1 and with --jobs 2 on this CPU,
# in alternating rounds (fresh results folders each time), so both see the same machine.
# Usage: scripts/cpu-sweep-jobs.sh [ROUNDS] ; results in ${OUT:-results/cpu-sweep-jobs}/times.tsv
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-2}"
out="${OUT:-results/cpu-sweep-jobs}"
mkdir -p "$out"
grid=(--methods protonet,maml --tasks omniglot-5w1s --seeds 0,1 --profile quick
      --set train.iterations=200 --set train.val_every=100 --set train.val_episodes=50 --set eval.episodes=200)
printf 'round\tjobs\tthreads_per_run\twall_seconds\n' > "$out/times.tsv"
for round in $(seq 1 "$rounds"); do
    for jobs in 1 2; do
        dir="$out/round$round-jobs$jobs"
        rm -rf "$dir"
        start=$(date +%s.%N)
        .venv/bin/python cli.py sweep "${grid[@]}" --jobs "$jobs" --out "$dir" > "$dir.log" 2>&1
        end=$(date +%s.%N)
        printf '%s\t%s\t%s\t%.1f\n' "$round" "$jobs" "$((2 / jobs))" "$(awk "BEGIN {print $end - $start}")" | tee -a "$out/times.tsv"
    done
done
git rev-parse --short HEAD >> "$out/times.tsv"
