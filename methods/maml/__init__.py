"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017).

Four interchangeable implementations of the same algorithm, and a choice between two of them
(setting ``impl``):

- ``batched``: every task of the meta-batch adapted and evaluated at once: ``torch.func.vmap``
  over a pure adaptation function built from ``functional_call`` and ``grad``.
- ``split``: adaptation vmapped as in ``batched``, then the query pass task by task. With
  per-task weights, a vmapped convolution becomes a grouped convolution, whose backward is
  slow on CPU (oneDNN); with many queries the plain per-task convolutions win.
- ``looped``: the same pure function, one task at a time.
- ``reference``: learn2learn's ``MAML`` wrapper (``clone()`` / ``adapt()``), task by task,
  the way its examples do it.
- ``auto`` (default): on a GPU, times ``batched`` and ``split`` on the first meta-batch and
  keeps the faster one; on the CPU, ``batched`` (recorded as ``impl_used``). On the CPU the two
  were within timing noise on the Omniglot shapes of the ``quick`` profile (``cli.py bench
  --impl batched,split``, one thread, a loaded machine: 3.97 and 4.22 s/iter on 5w5s, 0.87 and
  1.23 on 5w1s), so timing there picked either by chance, and two runs of one seed could differ
  in their last digits (``check-method``'s determinism rule found it).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from bench.errors import UserError
from bench.interface.backbones import build_backbone, composite_batch_norm
from bench.interface.method import Batch, Method, mask_logits, task_loss


@dataclass(frozen=True)
class MAMLConfig:
    backbone: str = "auto"
    """``auto``: the MAML paper's per input: conv4-64-stride for one-channel images (Omniglot),
    conv4-32-max for colour images (mini-ImageNet: fewer filters against overfitting),
    mlp-40-40 for vectors (sinusoid), text-cnn for sentences (Penn Treebank)."""
    inner_lr: float = 0.4
    """Step size of the inner gradient steps."""
    inner_steps: int = 1
    """Inner gradient steps during meta-training."""
    eval_inner_steps: int = 3
    """Inner gradient steps at validation and test time."""
    inner_loss: Literal["mean", "sum_over_shots"] = "mean"
    """Support loss of the inner steps: ``mean`` over the support examples (learn2learn's
    examples), or ``sum_over_shots``, the MAML code's: per-example cross-entropies summed and
    divided by the shots, i.e. ways times the mean, so its steps are ways times longer at the
    same ``inner_lr``. Regression uses the mean either way (as the MAML code does)."""
    first_order: bool = False
    """Drop the second-order terms (no graph through the inner gradients)."""
    batch_norm: Literal["transductive", "running"] = "transductive"
    """``transductive``: batch statistics at train and test (the MAML paper); ``running``: running statistics at test."""
    impl: Literal["auto", "batched", "split", "looped", "reference"] = "auto"
    """Implementation (same results within float rounding): see the module docstring; ``auto`` times ``batched`` and
    ``split`` on the first batch on a GPU and takes ``batched`` on the CPU."""

    def __post_init__(self):
        if not (1 <= self.inner_steps <= 1000 and 0 <= self.eval_inner_steps <= 10_000):
            raise UserError("method.inner_steps must be from 1 to 1000 and method.eval_inner_steps from 0 to 10000")
        if not self.inner_lr > 0:
            raise UserError(f"method.inner_lr must be positive, got {self.inner_lr:g}")




def auto_backbone(task) -> str:
    if task.modality != "image":
        return {"vector": "mlp-40-40", "text": "text-cnn"}[task.modality]
    return "conv4-64-stride" if task.channels == 1 else "conv4-32-max"


class MAML(Method):
    """Learns an initialisation that a few gradient steps on the support set adapt to each task."""

    kinds = frozenset({"classification", "regression"})
    Config = MAMLConfig
    profiles = Path(__file__).with_name("profiles.yaml")

    def __init__(self, config: MAMLConfig, task, ways: int):
        super().__init__(config, task, ways)
        if config.batch_norm == "running" and config.impl in ("batched", "looped"):
            raise UserError(
                "method.batch_norm=running updates statistics in place, which torch.func cannot do: use impl reference"
            )
        self.backbone = backbone = auto_backbone(task) if config.backbone == "auto" else config.backbone
        body, dim = build_backbone(backbone, task, config.batch_norm)
        self.net = nn.Sequential(body, nn.Linear(dim, ways if task.kind == "classification" else 1))
        self.impl_used = config.impl if config.impl != "auto" else None
        if config.batch_norm == "running" and config.impl == "auto":
            self.impl_used = "reference"

    # -- the pure adaptation function shared by `batched` and `looped` -------------------

    def _predict(self, params: dict, x: torch.Tensor, ways: int) -> torch.Tensor:
        out = functional_call(self.net, (params, dict(self.net.named_buffers())), (x,))
        return mask_logits(out, ways) if self.task.kind == "classification" else out

    def _inner_loss(self, params: dict, x: torch.Tensor, y: torch.Tensor, ways: int) -> torch.Tensor:
        out = self._predict(params, x, ways).unsqueeze(0)
        return self._support_loss(out, y.unsqueeze(0), ways)

    def _support_loss(self, outputs: torch.Tensor, targets: torch.Tensor, ways: int) -> torch.Tensor:
        """The inner loss of one task's support set ([1, S, C] outputs), by ``inner_loss``."""
        loss = task_loss(outputs, targets, self.task.kind)[0]
        if self.config.inner_loss == "sum_over_shots" and self.task.kind == "classification":
            return loss * ways  # sum over ways * shots examples, divided by shots
        return loss

    def adapt(self, params: dict, x: torch.Tensor, y: torch.Tensor, ways: int, steps: int, second_order: bool) -> dict:
        """``steps`` gradient steps from ``params`` on one task's support set; returns new parameters.

        With ``second_order`` the result stays differentiable through the inner gradients
        (``torch.func.grad`` is composable with the outer autograd); otherwise they are detached.
        """
        # Only the support passes are differentiated twice: they alone need the composite batch norm.
        with composite_batch_norm(self.net) if second_order else contextlib.nullcontext():
            for _ in range(steps):
                grads = grad(self._inner_loss)(params, x, y, ways)
                if not second_order:
                    grads = {k: g.detach() for k, g in grads.items()}
                params = {k: p - self.config.inner_lr * grads[k] for k, p in params.items()}
        return params

    def _task_outputs(self, params, sx, sy, qx, ways, steps, second_order):
        return self._predict(self.adapt(params, sx, sy, ways, steps, second_order), qx, ways)

    def forward_batched(self, batch: Batch, steps: int, second_order: bool) -> torch.Tensor:
        params = dict(self.net.named_parameters())
        per_task = lambda sx, sy, qx: self._task_outputs(params, sx, sy, qx, batch.ways, steps, second_order)  # noqa: E731
        return vmap(per_task, randomness="error")(batch.support_x, batch.support_y, batch.query_x)

    def forward_split(self, batch: Batch, steps: int, second_order: bool) -> torch.Tensor:
        params = dict(self.net.named_parameters())
        adapt = lambda sx, sy: self.adapt(params, sx, sy, batch.ways, steps, second_order)  # noqa: E731
        adapted = vmap(adapt, randomness="error")(batch.support_x, batch.support_y)  # {name: [T, ...]}
        return torch.stack(
            [self._predict({k: v[t] for k, v in adapted.items()}, batch.query_x[t], batch.ways) for t in range(batch.num_tasks)]
        )

    def forward_looped(self, batch: Batch, steps: int, second_order: bool) -> torch.Tensor:
        params = dict(self.net.named_parameters())
        return torch.stack(
            [
                self._task_outputs(params, batch.support_x[t], batch.support_y[t], batch.query_x[t], batch.ways, steps, second_order)
                for t in range(batch.num_tasks)
            ]
        )

    def forward_reference(self, batch: Batch, steps: int, second_order: bool) -> torch.Tensor:
        import learn2learn as l2l

        # Built per call so that the wrapper's copy of `net` is never registered twice.
        maml = l2l.algorithms.MAML(self.net, lr=self.config.inner_lr, first_order=not second_order)
        outs = []
        for t in range(batch.num_tasks):
            learner = maml.clone()
            for _ in range(steps):
                out = learner(batch.support_x[t])
                out = mask_logits(out, batch.ways) if self.task.kind == "classification" else out
                learner.adapt(self._support_loss(out.unsqueeze(0), batch.support_y[t].unsqueeze(0), batch.ways))
            out = learner(batch.query_x[t])
            outs.append(mask_logits(out, batch.ways) if self.task.kind == "classification" else out)
        return torch.stack(outs)

    def _choose_impl(self, batch: Batch, steps: int, second_order: bool) -> str:
        """Times one forward and backward pass of each candidate and keeps the faster."""
        timings = {}
        for impl in ("batched", "split"):
            best = float("inf")
            for _ in range(2):  # the first call pays one-off costs
                start = time.perf_counter()
                out = getattr(self, f"forward_{impl}")(batch, steps, second_order)
                grads = torch.autograd.grad(self.train_loss(out, batch), list(self.parameters()), allow_unused=True)
                del grads
                if batch.query_x.is_cuda:
                    torch.cuda.synchronize(batch.query_x.device)
                best = min(best, time.perf_counter() - start)
            timings[impl] = best
        return min(timings, key=timings.get)

    def unadapted(self, batch: Batch) -> torch.Tensor:
        return vmap(lambda qx: self._predict(dict(self.net.named_parameters()), qx, batch.ways))(batch.query_x)

    @property
    def transductive(self) -> bool:
        return self.config.batch_norm == "transductive"

    @property
    def graph_factor(self) -> float:
        # create_graph keeps, beside each support activation, the inner gradient's tensors of its size
        return 1.0 if self.config.first_order else 2.0

    def capture_blocker(self, training: bool) -> str | None:
        if not training:
            return "MAML adapts by gradient steps at test"
        if not self.config.first_order:
            return "second-order MAML differentiates twice, which torch.compile cannot capture (method.first_order=true can)"
        return None

    def info(self) -> dict:
        return {"impl_used": self.impl_used, "backbone": self.backbone}

    def restore_info(self, info: dict) -> None:
        self.impl_used = info.get("impl_used", self.impl_used)

    def forward(self, batch: Batch) -> torch.Tensor:
        steps = self.config.inner_steps if self.training else self.config.eval_inner_steps
        second_order = self.training and not self.config.first_order
        with torch.enable_grad():  # adaptation needs gradients, also under evaluation's no_grad
            if self.impl_used is None:
                cuda = batch.query_x.is_cuda  # timing on the CPU chose by chance (module docstring)
                self.impl_used = self._choose_impl(batch, steps, second_order) if cuda else "batched"
            out = getattr(self, f"forward_{self.impl_used}")(batch, steps, second_order)
        return out if self.training else out.detach()
