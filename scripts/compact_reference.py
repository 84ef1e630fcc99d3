"""Shrinks the committed reference runs (RunFolder.compact: training curves thinned, JSONL
gzipped, no lock files) so that the reference stays small; the report reads them unchanged.
Run it after moving new runs into results/reference: python scripts/compact_reference.py [RESULTS]"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.results.runfolder import run_folders  # noqa: E402

results = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "results" / "reference"
before = sum(p.stat().st_size for p in results.rglob("*") if p.is_file())
folders = [f for f in run_folders(results) if f.is_complete()]
for folder in folders:
    folder.compact()
after = sum(p.stat().st_size for p in results.rglob("*") if p.is_file())
print(f"compacted {len(folders)} runs under {results}: {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
