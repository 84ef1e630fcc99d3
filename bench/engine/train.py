"""Meta-training: one ``Trainer.step`` is one meta-batch of episodes and one optimizer step."""

from __future__ import annotations

import math
import time

import torch

from bench.data.episodes import PyRandomStream, eval_episodes
from bench.engine import capture
from bench.engine.evaluate import evaluate, primary_metric, score, summarise
from bench.engine.memory import MemoryEstimate, estimate
from bench.engine.setup import Setup
from bench.errors import RunFailed
from bench.interface.method import Batch


class Trainer:
    """Owns the optimizer, the learning-rate schedule and the training-episode stream."""

    def __init__(self, setup: Setup):
        self.method = method = setup.method
        self.config = config = setup.config
        self.sources = sources = setup.sources
        self.device = setup.device
        self.place = setup.place
        self.task = config.task_spec
        train = config.settings.train
        self.optimizer = torch.optim.Adam(method.parameters(), lr=train.lr)
        self.scheduler = (
            torch.optim.lr_scheduler.StepLR(self.optimizer, train.lr_decay_every, train.lr_decay)
            if train.lr_decay_every
            else None
        )
        self.stream = config.seeds.stream("train")
        self.iteration = 0
        self.ways, self.shots, self.queries = config.train_shape()
        self.val_episodes = eval_episodes(sources["val"], self.task, "val", config.val_episodes(), config.settings.eval.seed)
        self.steps = capture.eager(method)

    def capture(self) -> None:
        """Chooses eager or captured steps by ``train.compile``, on a probe meta-batch of the run's
        shape (drawn from its own stream, so that the training episodes stay those of the seed)."""
        train = self.config.settings.train
        probe = self.training_batch(self.config.seeds.stream("capture-probe"), train.chunk_tasks or train.meta_batch)
        self.steps = capture.choose(train.compile, self.method, probe, self.device)

    def training_batch(self, stream: PyRandomStream, tasks: int) -> Batch:
        """``tasks`` training episodes of the run's shape from ``stream``, on the device."""
        source = self.sources["train"]
        episodes = [source.sample(self.ways, self.shots, self.queries, stream) for _ in range(tasks)]
        return self.place(source.collate(episodes, self.ways, self.shots))

    def memory_estimate(self) -> MemoryEstimate:
        """The memory estimate for one training episode of the run's shape, drawn from its own
        stream so that the training episodes stay those of the seed."""
        train = self.config.settings.train
        episode = self.training_batch(self.config.seeds.stream("memory-probe"), 1)
        return estimate(self.method, episode, train.meta_batch, train.chunk_tasks)

    def step(self) -> dict:
        """One meta-training iteration; returns its loss, metric, duration and the process's CPU seconds in it."""
        start, cpu_start = time.perf_counter(), time.process_time()
        train = self.config.settings.train
        batch = self.training_batch(self.stream, train.meta_batch)
        self.method.train()
        self.optimizer.zero_grad(set_to_none=True)
        chunk = train.chunk_tasks or batch.num_tasks
        totals: dict[str, float] = {}
        for lo in range(0, batch.num_tasks, chunk):
            part = batch.slice(lo, lo + chunk)
            if self.steps.mode == "graphs":
                torch.compiler.cudagraph_mark_step_begin()  # the previous replay's outputs are no longer used
            outputs, loss = self.steps.forward_loss(part)
            loss = loss * (part.num_tasks / batch.num_tasks)
            loss.backward()
            with torch.no_grad():
                for key, value in score(outputs.detach(), part, self.task.kind).items():
                    totals[key] = totals.get(key, 0.0) + float(value.sum())
                totals["train_loss"] = totals.get("train_loss", 0.0) + float(loss)
        self.iteration += 1
        if not math.isfinite(totals["train_loss"]):
            raise RunFailed(f"the training loss became {totals['train_loss']} at iteration {self.iteration}")
        if train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), train.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        row = {"iteration": self.iteration, "loss": totals.pop("train_loss")}
        row.update({k: v / batch.num_tasks for k, v in totals.items() if k != "loss"})
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["seconds"] = time.perf_counter() - start
        row["cpu_seconds"] = time.process_time() - cpu_start
        return row

    def state_dict(self) -> dict:
        """Everything needed to continue exactly where training is: weights, optimizer,
        schedule, the episode stream's position and the generator states."""
        return {
            "iteration": self.iteration,
            "method": self.method.state_dict(),
            "method_info": self.method.info(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "stream": self.stream.state,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        self.method.load_state_dict(state["method"])
        self.method.restore_info(state["method_info"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.stream.state = _as_random_state(state["stream"])
        torch.set_rng_state(state["torch_rng"])

    def validate(self) -> dict:
        start = time.perf_counter()
        rows = evaluate(
            self.method, self.sources["val"], self.val_episodes, self.task, self.place,
            self.config.settings.eval.batch, self.steps.evaluate,
        )
        out = {"iteration": self.iteration, **summarise(rows, self.task.kind)}
        out["seconds"] = time.perf_counter() - start
        return out


def improves(value: float, best: float | None, kind: str) -> bool:
    """Higher accuracy, or lower MSE, than the best so far."""
    if best is None:
        return True
    return value > best if primary_metric(kind) == "accuracy" else value < best


def _as_random_state(state) -> tuple:
    """``random.setstate`` wants tuples; a checkpoint may give lists back."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
