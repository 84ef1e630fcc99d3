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


def test_the_ptb_table_puts_each_label_on_one_row_and_flags_mixed_code(tmp_path):
    import pandas as pd

    from bench.report.headline import ptb_markdown

    common = {"protocol": "vinyals-ptb", "metric": "accuracy", "ci95": 0.5, "run_ci95": 0.4, "seed_std": 0.1, "episodes": 1000,
              "best_at_last_val": "1/3", "difference": None, "source": None, "note": None}
    rows = [{"task": "ptb-5w2s", "method": "protonet (quick)", "mean": 47.0, "seeds": 3, "budget": "3000 it", "published": None,
             "other_protocol": None},
            {"task": "ptb-5w1s", "method": "protonet (quick)", "mean": 41.0, "seeds": 3, "budget": "3000 it", "published": None,
             "other_protocol": None},
            {"task": "ptb-5w1s", "method": "matchingnet (quick)", "mean": 42.0, "seeds": 3, "budget": "3000 it",
             "published": None, "other_protocol": "32.4 (vinyals-ptb, not retrieved)"},
            {"task": "ptb-5w1s", "method": "lstm-oracle (upper-bound)", "mean": 80.8, "seeds": 1, "budget": "7968 it",
             "published": 72.8, "other_protocol": None},
            {"task": "omniglot-5w1s", "method": "csn (quick)", "mean": 97.0, "seeds": 3, "budget": "3000 it", "published": None,
             "other_protocol": None, "protocol": "vinyals"}]
    pd.DataFrame([{**common, **r} for r in rows]).to_csv(tmp_path / "accuracy.csv", index=False)
    pd.DataFrame([{"task": "ptb-5w1s", "profile": "quick", "tag": "", "uniform": False},
                  {"task": "ptb-5w2s", "profile": "quick", "tag": "", "uniform": True}]).to_csv(tmp_path / "comparisons.csv", index=False)
    lines = ptb_markdown(tmp_path).strip().splitlines()
    assert lines[0] == "| method | budget | ptb-5w1s | ptb-5w1s published | ptb-5w2s | ptb-5w2s published |"
    assert lines[2:] == [
        "| protonet (quick) | 3000 it | 41.00 +- 0.50 (3 seeds) mixed code |  | 47.00 +- 0.50 (3 seeds) |  |",
        "| matchingnet (quick) | 3000 it | 42.00 +- 0.50 (3 seeds) mixed code | 32.4 (vinyals-ptb, not retrieved) |  |  |",
        "| lstm-oracle (upper-bound) | 7968 it | 80.80 +- 0.50 (1 seed, episodes only) | 72.8 |  |  |"]


def test_the_gap_table_gives_each_change_its_welch_interval_and_refuses_other_episodes(tmp_path):
    import pandas as pd

    rows = [{"variant": v, "task": t, "method": "protonet", "seed": s, "best_val": base + d, "run": "r"}
            for v, t, base in [("tasks-rule", "ptb-5w1s", 0.30), ("window-21", "ptb-5w1s@window-21", 0.33)]
            for s, d in enumerate([-0.01, 0.0, 0.01])]
    pd.DataFrame(rows).to_csv(tmp_path / "gap.csv", index=False)
    # both samples have sd 1 point over 3 seeds: the change's interval is t(0.975, 4) * sqrt(2/3)
    assert readme.ptb_gap_markdown(tmp_path / "gap.csv").strip().splitlines() == [
        "| variant of ptb-5w1s | protonet: val % (sd, seeds) | protonet: change (95 % interval) |",
        "|---|---|---|",
        "| tasks-rule | 30.00 (1.00, 3) |  |",
        "| window-21 | 33.00 (1.00, 3) | +3.00 +- 2.27 |"]
    pd.DataFrame([{**rows[0], "task": "ptb-5w1s-window-21"}]).to_csv(tmp_path / "own.csv", index=False)
    with pytest.raises(ValueError, match="ptb-5w1s-window-21 drew their own validation episodes"):
        readme.ptb_gap_markdown(tmp_path / "own.csv")


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
