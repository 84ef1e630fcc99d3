"""Shared by the test modules: the CLI in-process, configs by method name, and small fake run
folders written through the real run-folder writer (no training)."""

from pathlib import Path

from click.testing import CliRunner

from bench.engine.runconfig import RunConfig
from bench.engine.runconfig import resolve as resolve_class
from bench.results.runfolder import RunFolder
from bench.results.summary import read_summary
from cli import cli
from methods import METHODS


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, code, pattern):
    """The CLI failed with exit ``code`` and exactly one line ``error: ...`` containing ``pattern``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert pattern in lines[0], lines[0]


def the_run(out: Path) -> Path:
    """The one run folder under ``out``."""
    (run_dir,) = (out / "runs").iterdir()
    return run_dir


def resolve(method: str, task: str, profile: str = "quick", config_file=None, overrides=None) -> RunConfig:
    return resolve_class(METHODS.get(method), task, profile, config_file, overrides)


def fake_run(results: Path, method: str, seed: int, values: list[float], task: str = "omniglot-5w1s",
             complete: bool = True, checkpoint: bool = False, fingerprints: list[str] | None = None,
             overrides: dict | None = None, best_val: float = 0.7, environment: dict | None = None) -> RunFolder:
    """A run folder as a finished (or, with ``complete=False``, interrupted) run leaves it, with
    the given per-episode test values and best validation metric; ``overrides`` are config
    settings; ``checkpoint`` adds an untrained model's ``best.pt``; ``environment`` replaces
    the recorded code and machine."""
    config = resolve(method, task, "smoke", None, {**(overrides or {}), "seed": seed})
    metric = "accuracy" if config.task_spec.kind == "classification" else "mse"
    folder = RunFolder.create(results, config.to_dict())
    folder.write_config(config.to_dict())
    folder.write_environment(environment if environment is not None else {"device": "cpu"})
    folder.write_curves([{"iteration": 1, "loss": 1.0, metric: 0.5, "seconds": 0.1}],
                        [{"iteration": 1, metric: best_val - 0.1, "train_seconds": 2.0},
                         {"iteration": 2, metric: best_val, "train_seconds": 4.0}])
    if checkpoint:
        import torch

        from bench.engine.setup import make_method

        folder.save_best(make_method(config, torch.device("cpu")).state_dict(), method, task, 2)
    if not complete:
        folder.write_status("interrupted", 2)
        return folder
    fingerprints = fingerprints or [f"f{i}" for i in range(len(values))]
    rows = [{"episode": i, "fingerprint": fp, "classes": [], metric: v, "loss": 0.1}
            for i, (fp, v) in enumerate(zip(fingerprints, values))]
    mean = sum(values) / len(values)
    summary = {"method": method, "task": task, "profile": "smoke", "seed": seed, "run": folder.name, "metric": metric,
               metric: mean, f"{metric}_ci95": 0.0, "episodes": len(values), "iterations": 2,
               "train_seconds": 5.0 + seed, "wall_seconds": 8.0 + seed, "seconds_per_iteration": 0.5, "episodes_per_second": 2.0,
               "test_ms_per_episode": 3.0, "peak_memory_bytes": 2**20 * (100 + seed), "peak_memory_kind": "cpu_rss",
               "device": "cpu", "status": "complete", "method_info": _method_info(config), "best_val": best_val,
               "best_iteration": 2, "resumed": False, "finished": "2026-01-01T00:00:00+00:00"}
    folder.finish(rows, read_summary(summary))
    return folder


def _method_info(config: RunConfig) -> dict:
    """What a real run of ``config`` records from its method (e.g. the backbone ``auto`` chose)."""
    import torch

    from bench.engine.setup import make_method

    return make_method(config, torch.device("cpu")).info()
