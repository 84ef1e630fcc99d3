"""Rewrites the README's config-key tables from the config dataclasses: python scripts/readme_keys.py"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cli import README_KEYS_END, README_KEYS_START, config_reference  # noqa: E402

readme = REPO / "README.md"
text = readme.read_text()
head, rest = text.split(README_KEYS_START, 1)
_, tail = rest.split(README_KEYS_END, 1)
readme.write_text(head + README_KEYS_START + config_reference() + README_KEYS_END + tail)
