#!/usr/bin/env bash
# Issue 23: the four methods' `quick` runs on version 2 of the PTB tasks (3 seeds each), one run per
# `sweep` call so that `touch RESULTS/STOP` stops it at a run boundary (a run cut half-way is lost
# with a machine that is not kept). ProtoNet, Matching Networks and CSN from a worktree of 99ae02e,
# MAML from one of 54a960f (its PTB inner settings), all into one results folder; nice 19, one thread.
#
# Usage (the worktrees beside the repository, RESULTS defaults to ../runs-99ae02e/results/ptb-v2):
#   git worktree add --detach ../runs-99ae02e 99ae02e && git worktree add --detach ../runs-54a960f 54a960f
#   nohup scripts/ptb-v2-sweep.sh > ptb.log 2>&1 &
# TASKS="ptb-5w3s" limits it to some tasks: two calls with other tasks and other RESULTS folders use
# two cores (one results folder per call, so that two sweeps never append to one index at once).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out=$(realpath -m "${1:-$here/../runs-99ae02e/results/ptb-v2}")
export OMP_NUM_THREADS=1 CSN_BENCH_DATA=${CSN_BENCH_DATA:-$here/../shared/data}
for task in ${TASKS:-ptb-5w1s ptb-5w2s ptb-5w3s}; do for method in protonet matchingnet maml csn; do for seed in 0 1 2; do
  [[ -e $out/STOP ]] && { echo "$(date -u +%FT%TZ) STOP"; exit 0; }
  commit=$([[ $method == maml ]] && echo 54a960f || echo 99ae02e)
  cd "$here/../runs-$commit" || exit 1
  [[ -x .venv/bin/python ]] || scripts/setup.sh
  echo "$(date -u +%FT%TZ) start $task $method $seed at $commit"
  nice -n 19 .venv/bin/python cli.py sweep --methods $method --tasks $task --seeds $seed --profile quick \
    --threads-per-run 1 --jobs 1 --out "$out"
  echo "$(date -u +%FT%TZ) end $task $method $seed rc=$?"
done; done; done
