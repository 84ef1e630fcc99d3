"""The code's layering, checked from the source: each bench layer imports only the layers before
it, nothing in bench imports the methods, and only the run-folder module knows its file names."""

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ["shared", "interface", "data", "results", "engine", "report", "commandline"]
SHARED = {"errors", "registry", "config", "files", "stats"}


def layer(module: str) -> str:
    """``bench.data.episodes`` -> ``data``; ``bench.errors`` -> ``shared``."""
    part = module.split(".")[1]
    return "shared" if part in SHARED else part


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


BENCH = sorted(p for p in (REPO / "bench").rglob("*.py"))


@pytest.mark.parametrize("path", BENCH, ids=lambda p: str(p.relative_to(REPO)))
def test_each_layer_imports_only_the_layers_before_it(path):
    module = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if module == "bench.__init__":
        return
    own = LAYERS.index(layer(module))
    for name in imported_modules(path):
        assert name.split(".")[0] != "methods", f"{module} imports {name}: bench must not depend on the methods"
        if name.startswith("bench.") and name.count(".") >= 1:
            assert LAYERS.index(layer(name)) <= own, f"{module} ({layer(module)}) imports {name} ({layer(name)})"


def bench_imports(path: Path) -> set[str]:
    """The bench modules ``path`` imports anywhere (inside functions too), ``from bench.data import
    ptb`` read as ``bench.data.ptb``."""
    modules = {".".join(p.relative_to(REPO).with_suffix("").parts) for p in BENCH}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
    return {name for name in found if name in modules and not name.endswith("__init__")}


def test_no_import_circle_in_bench():
    graph = {".".join(p.relative_to(REPO).with_suffix("").parts): bench_imports(p) for p in BENCH}
    circles, done = [], set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            circles.append(" -> ".join(trail[trail.index(module):] + [module]))
            return
        if module in done:
            return
        for name in sorted(graph.get(module, ())):
            visit(name, trail + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not circles, circles


def test_no_torch_at_import_in_the_results_and_report_layers():
    for path in [*(REPO / "bench" / "results").glob("*.py"), *(REPO / "bench" / "report").glob("*.py"),
                 *(REPO / "bench" / f"{name}.py" for name in SHARED)]:
        top_level = [n for n in ast.parse(path.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in top_level:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.split(".")[0] == "torch" for n in names), f"{path.name} imports torch at the top"


RUN_FILES = re.compile(r"(state\.pt|best\.pt|summary\.json|test_episodes\.jsonl|config\.json|status\.json|"
                       r"environment\.json|train\.jsonl|val\.jsonl)")


def test_only_the_run_folder_module_names_the_run_files():
    owner = REPO / "bench" / "results" / "runfolder.py"
    sources = [*(REPO / "bench").rglob("*.py"), *(REPO / "methods").rglob("*.py"), REPO / "cli.py"]
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in sources if p != owner
                 for i, line in enumerate(p.read_text().splitlines(), 1) if RUN_FILES.search(line)]
    assert not offenders, offenders


def test_only_a_datasets_own_module_dispatches_on_its_name():
    """A dataset's name as a string literal is its module's and its registration's alone (the task
    YAMLs name it too), so that adding a dataset touches no other module."""
    from bench.data.datasets import DATASETS

    owners = {name: REPO / (DATASETS.get(name).module.replace(".", "/") + ".py") for name in DATASETS}
    shared = {REPO / "bench" / "data" / "datasets.py": "the registrations",
              REPO / "bench" / "data" / "synthetic.py": "writes mini-ImageNet's layout for timing runs",
              REPO / "bench" / "report" / "tables.py": "the CSN paper's table is Omniglot's (PAPER_DATA)"}
    offenders = []
    for path in [*(REPO / "bench").rglob("*.py"), *(REPO / "methods").rglob("*.py"), REPO / "cli.py"]:
        if path in shared:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in owners and owners[node.value] != path:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} '{node.value}'")
    assert not offenders, offenders


def test_scripts_use_the_harness_never_the_command_line_module():
    offenders = [p.name for p in (REPO / "scripts").glob("*.py") if "cli" in imported_modules(p)]
    assert not offenders, f"{offenders} import cli.py: scripts import bench (and methods), which cli.py only parses for"


def test_methods_build_on_the_interface_alone():
    """A method sees its task and batches through the interface; data, results, the engine and file
    writing are the harness's (so a method never reads data or writes files on its own)."""
    allowed = {"interface", "shared"}
    offenders = [f"{p.relative_to(REPO)}: {name}" for p in (REPO / "methods").rglob("*.py") for name in imported_modules(p)
                 if name.startswith("bench.") and (layer(name) not in allowed or name == "bench.files")]
    assert not offenders, offenders
