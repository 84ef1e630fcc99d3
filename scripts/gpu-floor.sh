#!/usr/bin/env bash
# The floor benchmark on a GPU machine (README "Speed on the CPU" has the CPU's), with whatever
# python3 and torch it has, set up as scripts/gpu-check.sh sets it up (run that first, in the same
# machine session, or let this do it): does channels_last pay on the GPU too? memory_format=auto
# keeps NCHW there until this says so. Tables go to ${OUT:-gpu-check}/floor.txt; at most 10 minutes.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${OUT:-gpu-check}"
mkdir -p "$out" /tmp/site
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 CSN_BENCH_DATA="$PWD/.gpu/data" CSN_BENCH_CACHE=/tmp/csn-cache
py=python3
$py -c 'import learn2learn' 2>/dev/null || { echo "learn2learn missing: run scripts/gpu-check.sh first" >&2; exit 1; }
$py -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.get_device_name(0))' | tee -a "$out/floor.txt"
floor() { timeout 300 $py cli.py floor --task omniglot-5w1s --device cuda --iterations 20 --warmup 5 --out "$out" "$@" 2>&1 \
    | grep -v "^timing" | tee -a "$out/floor.txt"; }
floor --methods protonet,csn,maml,matchingnet --profile quick
floor --methods protonet,csn --profile paper
