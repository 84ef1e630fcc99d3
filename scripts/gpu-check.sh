#!/usr/bin/env bash
# The GPU measurements of the README, with whatever python3 and torch the GPU machine has (no
# .venv, no Ray): per method on omniglot-5w1s (quick and paper profiles) milliseconds per
# iteration eager and captured (train.compile=graphs), and aggregate iterations per second of
# 1, 4 and 8 concurrent runs; then the projected wall time of the Omniglot paper table.
# `scripts/gpu-check.sh floor` instead runs the floor benchmark (README "Speed on the CPU" has the
# CPU's): does channels_last pay on the GPU too? memory_format=auto keeps NCHW there until it says so.
# Needs .gpu/ from scripts/gpu-pack.sh (carried). Tables go to ${OUT:-gpu-check}/; about 8 minutes each.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-gpu-check}"
mkdir -p "$out" /tmp/site
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 CSN_BENCH_DATA="$PWD/.gpu/data" CSN_BENCH_CACHE=/tmp/csn-cache
py=python3
if ! $py -c 'import learn2learn' 2>/dev/null; then
    # learn2learn's C files predate Python 3.11: regenerate them with the machine's Cython, then build.
    $py -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/gym*.whl .gpu/wheels/gym_notices*.whl 2>/dev/null \
        || $py -m pip install -q --no-index --no-deps --target /tmp/site .gpu/wheels/gym*
    rm -rf /tmp/l2l && mkdir /tmp/l2l && tar -xzf .gpu/wheels/learn2learn-0.2.0.tar.gz -C /tmp/l2l
    for mod in meta_dataset task_dataset transforms; do
        $py -m cython -3 /tmp/l2l/learn2learn-0.2.0/learn2learn/data/$mod.pyx -o /tmp/l2l/learn2learn-0.2.0/learn2learn/data/$mod.c
    done
    $py -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site /tmp/l2l/learn2learn-0.2.0
fi
$py -c 'import torch, learn2learn; print("torch", torch.__version__, "cuda", torch.cuda.get_device_name(0))' | tee "$out/device.txt"
git rev-parse HEAD 2>/dev/null | tee -a "$out/device.txt"
if [[ "${1:-}" == floor ]]; then
    floor() { timeout 300 $py cli.py floor --task omniglot-5w1s --device cuda --iterations 20 --warmup 5 --out "$out" "$@" 2>&1 \
        | grep -v "^timing" | tee -a "$out/floor.txt"; }
    floor --methods protonet,csn,maml,matchingnet --profile quick
    floor --methods protonet,csn --profile paper
    exit 0
fi
bench() { timeout 150 $py cli.py bench --task omniglot-5w1s --device cuda --out "$out" "$@" 2>&1 | grep -v "^timing" | tee -a "$out/bench.txt"; }
for method in protonet csn maml; do
    # eager against captured, one run at a time (second-order MAML cannot be captured: its
    # first-order variant is timed both ways instead)
    extra=(); [[ $method == maml ]] && extra=(--set method.first_order=true)
    for profile in quick paper; do
        bench --method $method --profile $profile --compile none,graphs "${extra[@]}" --iterations 20 --warmup 5
    done
    [[ $method == maml ]] && bench --method maml --profile paper --iterations 20 --warmup 5
    # 1, 4 and 8 runs at once on the one GPU (eager)
    bench --method $method --profile quick --jobs 1,4,8 --iterations 20 --warmup 5
done
$py scripts/project_paper_table.py "$out"/bench/*.json | tee "$out/projection.txt"
