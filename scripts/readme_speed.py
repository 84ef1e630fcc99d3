"""Rewrites the README's CPU speed tables from results/reference/speed/: python scripts/readme_speed.py"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report.speed import END, START, speed_markdown  # noqa: E402

readme = REPO / "README.md"
text = readme.read_text()
head, rest = text.split(START, 1)
_, tail = rest.split(END, 1)
readme.write_text(head + START + "\n" + speed_markdown(REPO / "results" / "reference" / "speed") + "\n" + END + tail)
