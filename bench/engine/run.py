"""One run from config to result files: train with validation, keep the best, test once."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from bench.engine.compute import model_cost
from bench.engine.device import device_name
from bench.engine.evaluate import evaluate_test_split, first_test_episode, primary_metric, summarise
from bench.engine.memory import current_memory_bytes, peak_memory_bytes, peak_memory_kind, reset_peak_memory
from bench.engine.provenance import environment, method_code
from bench.engine.runconfig import RunConfig
from bench.engine.setup import load_weights, set_up
from bench.engine.tensorboard import TensorBoardMirror
from bench.engine.train import Trainer, improves
from bench.errors import RunFailed, RunInterrupted, StorageError, UserError, first_line, os_error_line
from bench.results.runfolder import INDEX, RunFolder
from bench.results.summary import Budget, RunSummary


class Interrupted(BaseException):
    """A SIGINT or SIGTERM outside the training loop. A BaseException, as KeyboardInterrupt is:
    library code that catches Exception (torch's load_state_dict does, per parameter) must not
    swallow it and carry on with half its work done."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Signals:
    """SIGINT and SIGTERM during a run. Inside ``deferred()`` (the training loop, and writing the
    final files) they only set ``received``, checked between iterations, so the iteration in
    progress finishes and is checkpointed; anywhere else they raise ``Interrupted`` at once.
    Either way the run ends as ``interrupted``, resumable from its last checkpoint."""

    def __init__(self):
        self.received: int | None = None
        self._deferred = False
        self._raised = False  # once: a second signal must not interrupt the handling of the first
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Signals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signum
        if not self._deferred:
            self.interrupt()

    def interrupt(self) -> None:
        """Raises ``Interrupted`` for the signal received (deferred ones included), once."""
        if self.received is not None and not self._raised:
            self._raised = True
            raise Interrupted(self.received)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def late_signals_ignored(until_exit: bool) -> Iterator[None]:
    """The run handles SIGINT and SIGTERM while it runs; one that comes after its summary is
    written (while the result line is printed, or while the interpreter shuts down) finds the
    run complete: it changes nothing, and the command still exits 0 rather than dying with a
    half-printed line or click's "Aborted!". ``until_exit``: the process ends with the command
    (the CLI as the program), so the signals stay ignored until it exits; in-process callers,
    such as tests, get their handlers back."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # SIG_IGN, unlike a Python handler, survives the interpreter's shutdown, which puts
            # Python handlers back to the default (a kill) before the process ends.
            signal.signal(sig, signal.SIG_IGN if until_exit else handler)


def run(
    config: RunConfig, data_root: Path, out: Path, progress: bool = True, resume: RunFolder | None = None,
    tensorboard: bool = False,
) -> RunFolder:
    """Trains, validates and tests one run; returns its folder under ``out/runs``.

    With ``resume``, continues the run in that folder from its last state checkpoint (or from
    the start, where none was written); with ``tensorboard``, mirrors the curves into the run
    folder. SIGINT or SIGTERM in any phase ends the run as ``interrupted`` (``RunInterrupted``, exit 4);
    a write or read the system refuses (a full disk) ends it likewise (``StorageError``, exit 3).
    """
    with Signals() as signals:
        session, folder = None, resume
        try:
            if folder is None:
                RunFolder.check_results(out)  # an index that cannot be appended fails now, not after training
                with signals.deferred():  # a folder, once made, always holds its config
                    # The folder first: an unwritable --out fails before any data is read.
                    folder = RunFolder.create(out, config.to_dict())
                    folder.write_config(config.to_dict())
            if not folder.lock():
                raise UserError(f"{folder.path} is being run by another process")
            session = RunSession(config, folder, progress, tensorboard)
            signals.interrupt()  # one that arrived while the folder was made
            session.prepare(data_root, fresh=resume is None)
            session.train(signals)
            signals.interrupt()  # one that arrived after the last iteration's check
            session.test()
            with signals.deferred():  # the final files are written whole or not at all
                session.finish()
        except Interrupted as exc:
            if session is None:
                raise RunInterrupted(f"interrupted by {exc} before the run folder was made; nothing was written") from None
            folder.write_status("interrupted", session.checkpointed, phase=session.phase)
            raise RunInterrupted(
                f"interrupted by {exc} while {session.phase} (resumable from iteration {session.checkpointed}); "
                f"continue with: cli.py run --resume {folder.path}"
            ) from None
        except OSError as exc:
            if session is None:
                if resume is None and folder is not None:
                    folder.discard()  # made a moment ago, and not even its config could be written
                raise StorageError(f"{os_error_line(exc)}; nothing was run") from None
            if folder.is_complete():  # its summary is written: only the status or the index row is missing
                raise StorageError(f"{os_error_line(exc)} after the run was complete (its results are in "
                                   f"{folder.path}; {INDEX} lacks its row)") from None
            try:
                folder.write_status("interrupted", session.checkpointed, phase=session.phase, error=os_error_line(exc))
            except OSError:
                pass  # the status cannot be written either: the one there still names the last checkpoint
            raise StorageError(
                f"{os_error_line(exc)} while {session.phase}; the run is resumable from iteration "
                f"{session.checkpointed} once that is fixed: cli.py run --resume {folder.path}"
            ) from None
        finally:
            if folder is not None:
                folder.unlock()
    return folder


class RunSession:
    """The state of one run between its phases: preparing, training, testing, writing the summary."""

    def __init__(self, config: RunConfig, folder: RunFolder, progress: bool, tensorboard: bool):
        self.config, self.folder, self.progress, self.tensorboard = config, folder, progress, tensorboard
        self.phase = "loading data"
        self.checkpointed = 0  # the iteration a resume would continue from
        self.wall_start = time.perf_counter()
        self.train_rows: list[dict] = []
        self.val_rows: list[dict] = []
        self.best_value: float | None = None
        self.best_iteration = 0
        self.train_seconds = 0.0
        self.train_cpu_seconds = 0.0
        self.stopped_by: str | None = None

    def prepare(self, data_root: Path, fresh: bool) -> None:
        config, folder = self.config, self.folder
        state = folder.load_state(config.method) if folder.has_state() else None  # a broken state fails first
        if state is not None:
            try:
                self.checkpointed = int(state["trainer"]["iteration"])
            except (KeyError, TypeError, ValueError):
                raise UserError(f"cannot resume from {folder.path}: its state records no iteration") from None
        self.enter("loading data")
        try:
            self.setup = set_up(config, data_root)
        except UserError:
            if fresh:
                folder.discard()  # bad data or impossible episodes: nothing worth keeping
            raise
        data = self.setup.sources["test"].identity
        if fresh or not folder.has_environment():
            folder.write_environment({**environment(self.setup.device), "data": data,
                                      "method_code": method_code(config.method_class)})
        if data.get("official") is False and self.progress:
            tqdm.write(f"note: the {data['dataset']} files differ from the official set (manifest sha256 "
                       f"{data['manifest_sha256'][:12]}...); results are not comparable with published ones")
        self.trainer = trainer = Trainer(self.setup)
        if state is not None:
            try:
                trainer.load_state_dict(state["trainer"])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise UserError(f"cannot resume from {folder.path}: its state does not fit this run ({first_line(exc, 120)})") from None
            self.train_rows, self.val_rows = folder.train_rows(trainer.iteration), folder.val_rows(trainer.iteration)
            self.best_value, self.best_iteration = state["best_value"], state["best_iteration"]
            self.train_seconds = state["train_seconds"]
            self.train_cpu_seconds = state.get("train_cpu_seconds", 0.0)  # states written before it was counted
        self.resumed = not fresh
        self.enter("preparing")
        trainer.capture()
        self.memory = trainer.memory_estimate()
        if self.progress:
            tqdm.write(self.memory.describe())
        reset_peak_memory(self.setup.device)
        self.baseline = current_memory_bytes(self.setup.device)

    def enter(self, phase: str) -> None:
        """Records the phase in the run status, with the iteration a resume would continue from."""
        self.phase = phase
        self.folder.write_status("running", self.checkpointed, phase=phase)

    def checkpoint(self) -> None:
        self.folder.write_curves(self.train_rows, self.val_rows)
        self.folder.save_state(
            {"trainer": self.trainer.state_dict(), "best_value": self.best_value, "best_iteration": self.best_iteration,
             "train_seconds": self.train_seconds, "train_cpu_seconds": self.train_cpu_seconds},
            self.config.method,
        )
        self.checkpointed = self.trainer.iteration
        self.folder.write_status("running", self.trainer.iteration, phase=self.phase)

    def stop_reason(self) -> str | None:
        """Why training ends now (``iterations``, ``budget_seconds`` or ``patience``), or None."""
        train = self.config.settings.train
        if self.trainer.iteration >= train.iterations:
            return "iterations"
        spent = self.train_cpu_seconds if train.budget_clock == "cpu" else self.train_seconds
        if train.budget_seconds and spent >= train.budget_seconds:
            return "budget_seconds"
        if train.patience and sum(v["iteration"] > self.best_iteration for v in self.val_rows) >= train.patience:
            return "patience"
        return None

    def train(self, signals: Signals) -> None:
        config, folder, trainer = self.config, self.folder, self.trainer
        train, task = config.settings.train, self.setup.task
        key = primary_metric(task.kind)
        self.enter("training")
        bar = tqdm(total=train.iterations, initial=trainer.iteration, desc=f"{config.method} {config.task}",
                   disable=not self.progress, dynamic_ncols=True)
        mirror = TensorBoardMirror(folder.tensorboard_dir, trainer.iteration) if self.tensorboard else None
        with bar, signals.deferred(), contextlib.closing(mirror) if mirror else contextlib.nullcontext():
            while (stopped_by := self.stop_reason()) is None:
                self.phase = "training"
                try:
                    row = trainer.step()
                except RunFailed as exc:
                    folder.write_status("failed", trainer.iteration, reason=str(exc))
                    kept = f"the last good checkpoints are in {folder.path}" if folder.has_state() else "no checkpoint had been written yet"
                    raise RunFailed(f"{exc}; {kept}") from None
                self.train_seconds += row["seconds"]
                self.train_cpu_seconds += row["cpu_seconds"]
                self.train_rows.append(row)
                if mirror:
                    mirror.train(row)
                bar.update(1)
                if trainer.iteration % train.log_every == 0 or trainer.iteration == train.iterations:
                    recent = self.train_rows[-train.log_every :]
                    bar.set_postfix(
                        {"loss": f"{sum(r['loss'] for r in recent) / len(recent):.3f}",
                         key[:3]: f"{sum(r[key] for r in recent) / len(recent):.3f}"}
                    )
                validated = trainer.iteration % train.val_every == 0 or self.stop_reason() is not None  # the last one too
                if validated:
                    self.enter("validating")  # back to training at the next iteration
                    val = trainer.validate()
                    val["train_seconds"], val["train_cpu_seconds"] = self.train_seconds, self.train_cpu_seconds
                    self.val_rows.append(val)
                    if mirror:
                        mirror.validation(val)
                    # trained-on validation classes cannot choose: the final weights are tested
                    if train.classes == "trainval" or improves(val[key], self.best_value, task.kind):
                        self.best_value, self.best_iteration = val[key], trainer.iteration
                        folder.save_best(self.setup.method.state_dict(), config.method, config.task, trainer.iteration)
                    bar.write(f"  iteration {trainer.iteration}: validation {key} {val[key]:.4f} (best {self.best_value:.4f})")
                if validated or signals.received is not None or (
                    train.checkpoint_every and trainer.iteration % train.checkpoint_every == 0
                ):
                    self.checkpoint()
                signals.interrupt()
        self.stopped_by = stopped_by
        self.train_peak = peak_memory_bytes(self.setup.device)

    def test(self) -> None:
        self.enter("testing")
        setup = self.setup
        load_weights(setup.method, self.folder.load_best(self.config.method), self.folder)
        self.test_rows, self.test_seconds = evaluate_test_split(setup, self.config.test_episodes(), self.trainer.steps.evaluate)
        self.cost = model_cost(setup.method, first_test_episode(setup))

    def finish(self) -> None:
        self.enter("writing the summary")
        config, settings, task, device = self.config, self.config.settings, self.setup.task, self.setup.device
        train, rows = settings.train, self.test_rows
        seconds_per_iteration = self.train_seconds / max(len(self.train_rows), 1)
        tested = summarise(rows, task.kind)
        summary = RunSummary(
            method=config.method, task=config.task, profile=config.profile, protocol=task.protocol, tag=settings.tag,
            seed=settings.seed, run=self.folder.name, metric=tested.pop("metric"), episodes=tested.pop("episodes"),
            metrics=tested, method_info=self.setup.method.info(),
            compile={"setting": train.compile, "used": self.trainer.steps.mode, "reason": self.trainer.steps.reason},
            memory_format=self.setup.layout.to_dict(), model=self.cost, best_iteration=self.best_iteration,
            best_val=self.best_value, iterations=self.trainer.iteration,
            budget=Budget(iterations=train.iterations, budget_seconds=train.budget_seconds, clock=train.budget_clock,
                          patience=train.patience, stopped_by=self.stopped_by,
                          best_at_last_validation=self.best_iteration == self.val_rows[-1]["iteration"]),
            train_seconds=self.train_seconds, train_cpu_seconds=self.train_cpu_seconds,
            seconds_per_iteration=seconds_per_iteration, episodes_per_second=train.meta_batch / seconds_per_iteration,
            test_ms_per_episode=1000 * self.test_seconds / max(len(rows), 1),
            wall_seconds=time.perf_counter() - self.wall_start,
            peak_memory_bytes=max(self.train_peak, peak_memory_bytes(device)), peak_memory_kind=peak_memory_kind(device),
            memory={**self.memory.to_dict(), "baseline_bytes": self.baseline,
                    "measured_training_bytes": self.train_peak - self.baseline},
            device=device_name(device), resumed=self.resumed,
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"), load_average_end=os.getloadavg()[0],
            seeds=config.seeds.record(),  # every random stream's seed, by name (bench/data/episodes.py)
            task_version=task.version,
        )
        self.folder.finish(rows, summary)
