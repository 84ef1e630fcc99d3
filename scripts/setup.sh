#!/usr/bin/env bash
# Creates .venv with the pinned stack. Idempotent: a second run only compares a stamp.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv=.venv
stamp="$venv/.setup-stamp"
want="$(cat pyproject.toml requirements.lock scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: Python 3.11 or newer is required (found $("$python" --version 2>&1))" >&2
    exit 1
fi
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check --quiet)

echo "setup: installing pinned dependencies into $venv" >&2
"$py" - > "$venv/requirements.txt" <<'PY'
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
"${pip[@]}" install -c requirements.lock -r "$venv/requirements.txt" 2>&1 | grep -v '^WARNING: Location' || true
"$py" -c 'import torch, click, yaml, pandas, seaborn, tensorboard' # fail loudly if the install above did not work

if ! "$py" -c 'import importlib.metadata as m, sys; sys.exit(m.version("learn2learn") != "0.2.0")' 2>/dev/null; then
    echo "setup: building learn2learn 0.2.0 from source" >&2
    build="$(mktemp -d)"
    trap 'rm -rf "$build"' EXIT
    # Only learn2learn from source, its metadata prepared with the Cython and setuptools already
    # installed: `--no-binary :all:` would also build Cython from source for that step (minutes).
    "${pip[@]}" download --no-deps --no-build-isolation --no-binary learn2learn learn2learn==0.2.0 -d "$build"
    tar -xzf "$build"/learn2learn-0.2.0.tar.gz -C "$build"
    src="$build/learn2learn-0.2.0"
    for mod in meta_dataset task_dataset transforms; do
        "$venv/bin/cython" -3 "$src/learn2learn/data/$mod.pyx" -o "$src/learn2learn/data/$mod.c"
    done
    "${pip[@]}" install --no-build-isolation --no-deps "$src"
fi
"$py" -c 'import learn2learn' 2>/dev/null

echo "$want" > "$stamp"
echo "setup: done" >&2
