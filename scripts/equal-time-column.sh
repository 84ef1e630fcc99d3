#!/usr/bin/env bash
# Issue 21: one column of the CSN paper's Omniglot table, every method under one equal training
# budget in CPU seconds (train.budget_clock=cpu, one thread per run, two runs at a time unless JOBS says otherwise).
#
# Usage, from a worktree of the column's fixed commit (every run of a column uses one commit):
#   scripts/equal-time-column.sh omniglot-20w1s 900 [RESULTS]     (RESULTS: results/col-20w1s)
# JOBS=1 before it runs one run at a time (default 2), leaving a core to other work: the CPU-second
# budget keeps each run's training time whatever else runs. `touch RESULTS/STOP` lets the runs in
# progress finish and starts no other (a session about to end loses a run cut half-way when its
# machine is not kept); remove it and run the script again to go on.
#
# Phase 1: two candidates per method on seed 0 (the quick profile's episode batch and one other,
# fixed here before any run: meta-batch 32 or 8 for CSN; for MAML the profile's meta-batch and a
# quarter of it; 30 or 60 training ways for ProtoNet and Matching Networks). Phase 2: seeds 1 and 2
# of each method's candidate with the best seed-0 validation accuracy (summary.json best_val); test
# episodes play no part. Each job is one sweep into its own folder, so the script can be re-run
# after a stop: a sweep skips a finished run and resumes an interrupted one.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
task=$1 budget=$2 out=${3:-results/col-${1#omniglot-}} jobs=${JOBS:-2}
ways=${task#omniglot-}; ways=${ways%%w*}
maml=$([[ $ways == 20 ]] && echo 16 || echo 32)  # MAML's quick meta-batch (the paper's 16 on 20-way)
export CSN_BENCH_DATA=${CSN_BENCH_DATA:-../shared/data} OMP_NUM_THREADS=1 task out budget
mkdir -p "$out/logs"
job() { # name method seed setting
  if [[ -e $out/STOP ]]; then echo "$(date -u +%FT%TZ) not started $1 (STOP)" >> "$out/progress"; return; fi
  echo "$(date -u +%FT%TZ) start $1" >> "$out/progress"
  .venv/bin/python cli.py sweep --methods "$2" --seeds "$3" --set "$4" --tasks "$task" --profile quick \
    --set tag=equal-time --set train.budget_seconds="$budget" --set train.budget_clock=cpu \
    --set train.iterations=1000000 --set train.val_every=100 --threads-per-run 1 --out "$out/$1" > "$out/logs/$1.log" 2>&1
  echo "$(date -u +%FT%TZ) end $1 rc=$?" >> "$out/progress"
}
export -f job
printf '%s\n' \
  "csn-mb32-s0 csn 0 train.meta_batch=32" "protonet-w30-s0 protonet 0 train.ways=30" \
  "csn-mb8-s0 csn 0 train.meta_batch=8" "protonet-w60-s0 protonet 0 train.ways=60" \
  "maml-mb$maml-s0 maml 0 train.meta_batch=$maml" "matchingnet-w30-s0 matchingnet 0 train.ways=30" \
  "maml-mb$((maml / 4))-s0 maml 0 train.meta_batch=$((maml / 4))" "matchingnet-w60-s0 matchingnet 0 train.ways=60" \
  | xargs -P "$jobs" -L 1 bash -c 'job "$@"' _
# Phase 2's choice needs every phase-1 run.
[[ -e $out/STOP ]] && exit 0
.venv/bin/python - "$out" > "$out/chosen" <<'PY'
import json, pathlib, sys
best = {}
for s in sorted(pathlib.Path(sys.argv[1]).glob("*-s0/runs/*/summary.json")):
    d = json.loads(s.read_text()); method, setting = s.parts[-4].split("-")[:2]
    if method not in best or d["best_val"] > best[method][1]:
        best[method] = (setting, d["best_val"])
for method, (setting, value) in sorted(best.items()):
    key = "train.meta_batch=" if setting.startswith("mb") else "train.ways="
    print(method, setting, key + setting.lstrip("mbw"), value)
PY
cat "$out/chosen" >> "$out/progress"
while read -r method setting kv _; do
  for seed in 1 2; do echo "$method-$setting-s$seed $method $seed $kv"; done
done < "$out/chosen" | xargs -P "$jobs" -L 1 bash -c 'job "$@"' _
[[ -e $out/STOP ]] && exit 0
echo "$(date -u +%FT%TZ) column done" >> "$out/progress"
