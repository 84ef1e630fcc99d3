#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has its own Python and torch but no
# network, no .venv and no data: Omniglot as the two official-layout zips (about 10 MB), the
# learn2learn 0.2.0 source and the gym wheels it imports. Writes .gpu/ (git-ignored); carry it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
data="${CSN_BENCH_DATA:-../shared/data}"
mkdir -p .gpu/data/omniglot .gpu/wheels
for name in images_background images_evaluation; do
    [[ -f .gpu/data/omniglot/$name.zip ]] || (cd "$data/omniglot" && zip -qr "$root/.gpu/data/omniglot/$name.zip" "$name")
done
cp -r "$data/omniglot/splits" .gpu/data/omniglot/
pip=(python3 -m pip download --quiet --no-deps -d .gpu/wheels)
"${pip[@]}" --no-binary learn2learn --no-build-isolation learn2learn==0.2.0
"${pip[@]}" --only-binary=:all: gym==0.26.2 gym-notices==0.1.0 || "${pip[@]}" gym==0.26.2 gym-notices==0.1.0
du -sh .gpu
