"""Rewrites the README's generated sections, the config-key tables (from the config dataclasses),
the headline tables (from the reference report's CSV files) and the speed tables (from
results/reference/speed/): python scripts/readme.py"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.report import headline, speed  # noqa: E402
from cli import README_KEYS_END, README_KEYS_START, config_reference  # noqa: E402

SECTIONS = [
    (headline.START, headline.END, lambda: headline.headline_markdown(REPO / "results" / "reference")),
    (README_KEYS_START, README_KEYS_END, config_reference),
    (speed.START, speed.END, lambda: "\n" + speed.speed_markdown(REPO / "results" / "reference" / "speed") + "\n"),
]

readme = REPO / "README.md"
text = readme.read_text()
for start, end, body in SECTIONS:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    text = head + start + body() + end + tail
readme.write_text(text)
