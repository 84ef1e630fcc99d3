"""``check-method``: a method put through the rules the report relies on, on tiny generated tasks.

Each rule is checked on its own and reported as one ``Check``: the configuration (every profile
builds, an unknown key is refused), every task kind the method claims (image and text
classification, regression: handled, or refused at construction with a one-line error),
learning (the loss on a fixed meta-batch falls), determinism, query independence (unless the
method declares itself ``transductive``), checkpoints, support order (unless it declares
``support_order_matters``) and quiet (no file written, nothing printed). No data on disk is used.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from bench.config import build
from bench.data.datasets import build_sources
from bench.data.episodes import PyRandomStream
from bench.data.tasks import get_task
from bench.engine.compute import is_transductive
from bench.engine.runconfig import RunSettings, profile_values, profiles
from bench.errors import UserError, first_line
from bench.interface.method import Batch, Method
from bench.interface.task import TaskSpec

LEARN_STEPS = 30  # Adam steps on one fixed meta-batch: enough for any method whose gradients reach its weights
LEARN_DROP = 0.9  # the loss after them must be below this fraction of the loss before
CHECK_PROFILE = "quick"
REGRESSION_TASK = "sinusoid-5s"  # generated episodes: no data on disk
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}  # reordering sums (batch statistics, a shuffled support set)


@dataclass(frozen=True)
class Check:
    rule: str
    ok: bool
    detail: str


def toy_task(modality: str) -> TaskSpec:
    """A 5-way 2-shot task of 28x28 one-channel images or of 9-token sentences over 30 words, or
    sinusoid regression with 5 shots. Named ``omniglot-check``, ``ptb-check`` and
    ``sinusoid-check``, so that a profile's sections for those datasets' tasks apply to them."""
    common = {"version": 1, "protocol": "check-method", "split": "none", "test_episodes": 4, "val_episodes": 4}
    if modality == "regression":  # the sinusoid task itself, whose episodes are generated
        return dataclasses.replace(get_task(REGRESSION_TASK), name="sinusoid-check", queries=10, **common)
    text = modality == "text"
    return TaskSpec(name="ptb-check" if text else "omniglot-check", kind="classification", dataset="check", image_size=0 if text else 28,
                    ways=5, shots=2, queries=3, sequence_length=9 if text else 0, vocabulary=30 if text else 0,
                    modality=modality, **common)


def toy_batch(task: TaskSpec, tasks: int, seed: int) -> Batch:
    """``tasks`` episodes of ``task``. Image classes are fixed noise patterns seen through fresh
    noise; sentence classes are three signature words among random ones; labels are shuffled
    per episode, so only what the support set says identifies a class."""
    if task.kind == "regression":
        source, stream = build_sources(task, Path("."))["train"], PyRandomStream(seed)
        return source.collate([source.sample(0, task.shots, task.queries, stream) for _ in range(tasks)], 0, task.shots)
    g = torch.Generator().manual_seed(seed)
    ways, per_class = task.ways, task.shots + task.queries
    classes = torch.stack([torch.randperm(20, generator=g)[:ways] for _ in range(tasks)])  # [T, ways] of 20 classes
    if task.is_text:
        signatures = torch.randint(3, task.vocabulary, (20, 3), generator=torch.Generator().manual_seed(1))
        x = torch.randint(3, task.vocabulary, (tasks, ways, per_class, task.sequence_length), generator=g)
        slots = torch.stack([torch.randperm(task.sequence_length, generator=g)[:3] for _ in range(tasks * ways * per_class)])
        x.view(-1, task.sequence_length).scatter_(1, slots, signatures[classes].repeat_interleave(per_class, 1).view(-1, 3))
    else:
        patterns = torch.rand(20, 1, task.image_size, task.image_size, generator=torch.Generator().manual_seed(1))
        noise = torch.rand(tasks, ways, per_class, *patterns.shape[1:], generator=g)
        x = (0.7 * patterns[classes].unsqueeze(2) + 0.3 * noise).clamp(0, 1)
    y = torch.arange(ways).view(1, ways, 1).expand(tasks, ways, per_class)

    def part(t: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        return t[:, :, lo:hi].flatten(1, 2)

    return Batch(part(x, 0, task.shots), part(y, 0, task.shots), part(x, task.shots, per_class),
                 part(y, task.shots, per_class), ways)


def profile_settings(cls: type[Method], task: TaskSpec) -> tuple[object, float]:
    """The method's settings and learning rate of its ``quick`` profile for ``task`` (the defaults
    and the harness's learning rate where it has none): the settings its users run first."""
    values = profile_values(cls, CHECK_PROFILE, task) if CHECK_PROFILE in profiles(cls) else {}
    method_values = values.pop("method", {})
    return build(cls.Config, method_values, "method"), build(RunSettings, values).train.lr


def build_method(cls: type[Method], task: TaskSpec, seed: int = 0) -> Method:
    torch.manual_seed(seed)
    return cls(profile_settings(cls, task)[0], task, task.ways)


def predict(method: Method, batch: Batch) -> torch.Tensor:
    method.eval()
    with torch.no_grad():
        return method(batch)


def train(method: Method, batch: Batch, steps: int) -> list[float]:
    """``steps`` Adam steps at the profile's learning rate on ``batch``; the loss before each."""
    optimizer = torch.optim.Adam(method.parameters(), lr=profile_settings(type(method), method.task)[1])
    losses = []
    for _ in range(steps):
        method.train()
        optimizer.zero_grad(set_to_none=True)
        loss = method.train_loss(method(batch), batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def check_config(cls: type[Method], task: TaskSpec) -> Check:
    if not (dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen):
        return Check("config", False, "Config is not a frozen dataclass")
    names = profiles(cls)
    for profile in names:
        values = profile_values(cls, profile, task)
        build(cls.Config, values.pop("method", {}), "method")
        build(RunSettings, values)
    try:
        build(cls.Config, {"no_such_key": 1}, "method")
    except UserError:
        return Check("config", True, f"defaults and {len(names)} profiles build; an unknown key is refused")
    return Check("config", False, "an unknown key was accepted")


def check_kind(cls: type[Method], modality: str) -> tuple[Check, Method | None]:
    task = toy_task(modality)
    rule = f"kind {modality}"
    try:
        method = build_method(cls, task)
    except UserError as exc:
        return Check(rule, True, f"refused at construction: {first_line(exc)}"), None
    batch = toy_batch(task, 2, seed=0)
    want = (2, batch.query_x.shape[1], batch.ways or 1)
    finite = {}
    for mode in ("train", "eval"):
        getattr(method, mode)()
        with torch.set_grad_enabled(mode == "train"):
            out = method(batch)
        if tuple(out.shape) != want:
            return Check(rule, False, f"{mode} predictions of shape {tuple(out.shape)}, not {want}"), None
        finite[mode] = bool(torch.isfinite(out).all())
    if not finite["train"]:
        return Check(rule, False, "training predictions are not finite"), None
    # Before any training, test-time adaptation may diverge (MAML's Omniglot settings, 10 steps at
    # inner lr 0.4, did on sentences): worth saying, not a broken contract.
    caveat = "" if finite["eval"] else "; the untrained model's evaluation predictions are not finite"
    return Check(rule, True, f"predictions of shape {want} in training and evaluation{caveat}"), method


def check_learns(cls: type[Method], task: TaskSpec) -> Check:
    # Two tasks, like the other rules: with four, CSN's loss fell less (to 0.62 of its start,
    # against 0.47 with two) in two and a half times the time (the slowest rule of any method).
    method, batch = build_method(cls, task), toy_batch(task, 2, seed=1)
    losses = train(method, batch, LEARN_STEPS)
    method.train()
    with torch.no_grad():
        after = float(method.train_loss(method(batch), batch))
    ok = after < LEARN_DROP * losses[0]
    return Check("learns", ok, f"training loss {losses[0]:.4g} -> {after:.4g} after {LEARN_STEPS} steps on one meta-batch"
                 + ("" if ok else f" (must fall below {LEARN_DROP:g} of it)"))


def check_deterministic(cls: type[Method], task: TaskSpec) -> Check:
    batch, test = toy_batch(task, 2, seed=2), toy_batch(task, 2, seed=3)
    runs = []
    for _ in range(2):
        method = build_method(cls, task, seed=7)
        train(method, batch, 3)
        runs.append(predict(method, test))
    ok = torch.equal(*runs)
    return Check("deterministic", ok, "same seed, same episodes: identical predictions after 3 steps" if ok
                 else f"same seed, same episodes: predictions differ by up to {float((runs[0] - runs[1]).abs().max()):.3g}")


def check_queries(method: Method, task: TaskSpec) -> Check:
    depends = is_transductive(method, toy_batch(task, 2, seed=4))
    if method.transductive:
        return Check("query independence", True, "declared transductive" + ("" if depends else " (no dependence seen)"))
    return Check("query independence", not depends, "a query's prediction changes with the other queries"
                 " but the method does not declare itself transductive" if depends else "each query predicted on its own")


def check_checkpoint(cls: type[Method], task: TaskSpec) -> Check:
    method, batch = build_method(cls, task), toy_batch(task, 2, seed=5)
    train(method, batch, 2)
    buffer = io.BytesIO()
    torch.save({"state_dict": method.state_dict(), "info": method.info()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=False)
    reloaded = build_method(cls, task, seed=1)  # another initialisation, overwritten by the checkpoint
    reloaded.load_state_dict(saved["state_dict"])
    reloaded.restore_info(saved["info"])
    ok = torch.equal(predict(method, batch), predict(reloaded, batch))
    return Check("checkpoint", ok, "a reloaded checkpoint predicts identically" if ok
                 else "a reloaded checkpoint predicts differently (state kept outside parameters and buffers?)")


def check_support_order(method: Method, task: TaskSpec) -> Check:
    batch = toy_batch(task, 2, seed=6)
    order = torch.randperm(batch.support_x.shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = Batch(batch.support_x[:, order], batch.support_y[:, order], batch.query_x, batch.query_y, batch.ways, batch.extras)
    same = torch.allclose(predict(method, batch), predict(method, shuffled), **TOLERANCE)
    if method.support_order_matters:
        return Check("support order", True, "declared order-dependent")
    return Check("support order", same, "predictions do not depend on the support set's order" if same
                 else "predictions change when the support set is reordered, which the method does not declare")


@contextlib.contextmanager
def watched(noticed: list[str]) -> Iterator[None]:
    """Runs the block in an empty working folder, noting every file opened for writing and
    everything printed (warnings are not the method's printing and are dropped)."""
    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
            noticed.append(f"opened {os.fsdecode(file)} for writing")
        return real_open(file, mode, *args, **kwargs)

    printed = io.StringIO()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        builtins.open = io.open = guarded_open
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            builtins.open = io.open = real_open
            os.chdir(cwd)
            left = sorted(os.listdir(folder))
    if left:
        noticed.append(f"left {', '.join(left)} in its working folder")
    if printed.getvalue():
        noticed.append(f"printed {printed.getvalue().strip().splitlines()[0][:80]!r}")


def attempt(rule: str, fn: Callable[[], Check], noticed: list[str]) -> Check:
    """``fn()``, watched; a method that raises fails the rule with the error's first line."""
    try:
        with watched(noticed):
            return fn()
    except Exception as exc:  # the method's own error, whatever it is, is this rule's finding
        return Check(rule, False, f"raised {type(exc).__name__}: {first_line(exc)}")


def check_method(cls: type[Method]) -> Iterator[Check]:
    """Every rule, one ``Check`` each, as it is decided (the quiet rule last: it watches the others)."""
    noticed: list[str] = []
    claimed = [m for kind, modalities in (("classification", ("image", "text")), ("regression", ("regression",)))
               if kind in cls.kinds for m in modalities]
    if not claimed or not set(cls.kinds) <= {"classification", "regression"}:
        yield Check("kinds", False, f"kinds must name classification or regression, got {sorted(cls.kinds)}")
        return
    yield attempt("config", lambda: check_config(cls, toy_task(claimed[0])), noticed)
    handled: list[tuple[str, Method]] = []
    for modality in claimed:
        found: list[Method] = []

        def kind(modality=modality, found=found) -> Check:
            check, method = check_kind(cls, modality)
            found.extend([method] if method is not None else [])
            return check

        yield attempt(f"kind {modality}", kind, noticed)
        handled += [(modality, m) for m in found]
    if not handled:
        yield Check("learns", False, "handles none of the kinds it claims")
    else:
        modality, method = handled[0]
        task = toy_task(modality)
        for rule, fn in (("learns", lambda: check_learns(cls, task)),
                         ("deterministic", lambda: check_deterministic(cls, task)),
                         ("query independence", lambda: check_queries(method, task)),
                         ("checkpoint", lambda: check_checkpoint(cls, task)),
                         ("support order", lambda: check_support_order(method, task))):
            yield attempt(rule, fn, noticed)
    yield Check("quiet", not noticed, "; ".join(dict.fromkeys(noticed)) if noticed else "wrote no file and printed nothing")
