"""The documentation's generated sections and the README's shape, checked against the code and
the committed report (``python scripts/readme.py`` rewrites them)."""

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("readme_script", REPO / "scripts" / "readme.py")
readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme)


@pytest.mark.parametrize("section", readme.SECTIONS, ids=lambda s: f"{s.path.relative_to(REPO)}:{s.start.split(':')[0][5:]}")
def test_every_generated_section_is_what_its_generator_writes_today(section):
    assert readme.shown(section) == section.body(), f"{section.path.name} is stale: run python scripts/readme.py"


def test_the_headline_shows_csns_published_number_as_not_like_for_like():
    (headline,) = [s for s in readme.SECTIONS if "headline" in s.start]
    assert "98.42, protocol not retrieved" in readme.shown(headline)


def test_the_layout_tables_name_every_module():
    modules = sorted(p for p in [*(REPO / "bench").rglob("*.py"), *(REPO / "methods").rglob("*.py")] if p.name != "__init__.py")
    listed = readme.modules_markdown()
    assert all(f"`{p.relative_to(REPO).as_posix()}`" in listed for p in modules)
    assert all(f"`{p.stem}`" in readme.layout_markdown() for p in modules)


def test_the_readme_is_an_entry_point_and_its_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 160, "the README is an entry point: move topics to docs/, measurements to results/reference/"
    assert text.splitlines()[3:5] == ["make demo   # sets up .venv if needed, then trains every method briefly on omniglot-5w1s and prints a comparison",
                                      "make test   # sets up .venv if needed, then runs the test suite (CPU only)"]
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md"), REPO / "results" / "reference" / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to a missing {target}"
