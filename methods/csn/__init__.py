"""Conditionally Shifted Neurons (Munkhdalai, Yuan, Mehri & Trischler, ICML 2018).

Implements ``shared/docs/csn.md``: a description pass over the support set gives every
neuron conditioning information (direct feedback ``df`` or error gradients ``grad``); a
value network turns it into a scalar per neuron and example; a key network embeds the
examples; each query reads an attention-weighted sum of the stored values and is
classified by the base network with its neurons shifted by what it read. Everything is
batched over the tasks of a meta-batch and over queries; only the attention is per task.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UserError
from bench.interface.backbones import WORD_DIM, ResidualBlock, TokenEmbedding
from bench.interface.method import Batch, Method, mask_logits, task_loss


@dataclass(frozen=True)
class CSNConfig:
    architecture: Literal["auto", "adaffn", "seed", "paper", "conv4", "adaresnet", "text"] = "auto"
    """Base, key and value networks: ``adaffn`` (sinusoid), ``seed`` (the TensorFlow reimplementation's adaCNN),
    ``paper`` (the paper's adaCNN), ``conv4`` (the Conv-4 of ProtoNet and MAML), ``adaresnet`` (ResNet-12 blocks),
    ``text`` (sentences: the text-cnn encoder's layers and a dense layer); ``auto``: adaffn for regression,
    text for sentences, seed for images."""
    conditioning: Literal["df", "grad"] = "df"
    """``df``: direct feedback sigma'(a) * dL/do (the paper's main variant); ``grad``: dL/da by autograd."""
    detach_conditioning: bool = False
    """Stop meta-gradients through the conditioning information."""
    shift: Literal["post_act", "pre", "post"] = "post_act"
    """``post_act``: sigma(a) + sigma(beta) (paper Eq. 1); ``pre``: sigma(a + beta) (seed); ``post``: sigma(a) + beta."""
    attention: Literal["cosine", "dot"] = "cosine"
    """Similarity of a query key to the support keys: ``cosine`` (paper) or ``dot`` (seed)."""
    learned_temperature: bool = True
    """With cosine attention: multiply similarities by a learned scalar (initialised to 10)."""
    granularity: Literal["position", "channel"] = "position"
    """Conv layers: one shift per channel and position, or per channel (information averaged over positions)."""
    csn_layers: str = "seed"
    """``seed``: every hidden layer but the first, plus the output; ``all``; or a list such as ``2,3,out``."""
    key_size: int = 0
    """Key embedding size; 0 means the architecture's."""
    value_hidden: tuple[int, ...] = ()
    """Hidden sizes of the value MLP; empty means the architecture's."""
    batch_norm: Literal["none", "keys", "all"] = "keys"
    """Batch norm (running statistics at test) in the key network, in both networks, or nowhere.
    Without it, a freshly initialised deep key network maps every image to nearly the same
    direction, attention is uniform and training stalls at chance."""
    normalise_query_loss: bool = False
    """Regression: divide query targets and predictions by the amplitude in the training loss (seed)."""

    def __post_init__(self):
        if not 0 <= self.key_size <= 65_536:
            raise UserError(f"method.key_size must be from 0 to 65536, got {self.key_size}")
        if not all(1 <= width <= 65_536 for width in self.value_hidden):
            raise UserError(f"method.value_hidden sizes must be from 1 to 65536, got {list(self.value_hidden)}")


@dataclass(frozen=True)
class Architecture:
    """Base layers as (kind, width, pool); key layers likewise, then a dense key of ``key_size``."""

    base: tuple[tuple[str, int, str], ...]
    key: tuple[tuple[str, int, str], ...]
    key_size: int
    value_hidden: tuple[int, ...]


ARCHITECTURES = {
    # Finn et al.'s 1-40-40-1 regressor; key 1-10-10-4; value 10-10-1 (csn.md).
    "adaffn": Architecture((("dense", 40, ""),) * 2, (("dense", 10, ""),) * 2, 4, (10, 10)),
    # The seed's adaCNN: 4 x (3x3 conv 32, ReLU, 2x2 max-pool stride 1); key 2 such blocks -> 32; value 32-32-1.
    "seed": Architecture((("conv", 32, "max2s1"),) * 4, (("conv", 32, "max2s1"),) * 2, 32, (32, 32)),
    # The paper's adaCNN (Sec. 4.1): 5 x 3x3 conv 64; key network of the same shape; value MLP 40-40-1.
    "paper": Architecture(
        (("conv", 64, "max2"),) * 4 + (("conv", 64, ""),), (("conv", 64, "max2"),) * 4 + (("conv", 64, ""),), 64, (40, 40)
    ),
    # adaResNet (csn.md): ResNet-12 blocks of 64-96-128-256 filters, CSNs on each block's output;
    # a Conv-4 key network of 32 filters keeps the memory's cost small beside the base network.
    "adaresnet": Architecture(
        tuple(("res", w, "max2") for w in (64, 96, 128, 256)), (("conv", 32, "max2"),) * 4, 64, (40, 40)
    ),
    # ProtoNet's and MAML's Conv-4 layout (64 filters, 2x2 max-pool), for one-backbone comparisons.
    "conv4": Architecture((("conv", 64, "max2"),) * 4, (("conv", 64, "max2"),) * 4, 64, (40, 40)),
    # A reconstruction (the paper's PTB network was not retrieved): the layers of the other methods'
    # text-cnn (64-d word embeddings and a width-3 convolution of 128 filters, a second one, max
    # over positions), then a dense layer of 128; CSNs on the second convolution (a shift per
    # filter and position: the blank is always at the centre), the dense layer and the output.
    # Key network: embeddings, one convolution of 64 filters, max over positions, a 64-d key.
    "text": Architecture(
        (("text", 128, ""), ("conv1d", 128, "maxtime"), ("dense", 128, "")), (("text", 64, "maxtime"),), 64, (40, 40)
    ),
}


def _pool(kind: str, x: torch.Tensor) -> torch.Tensor:
    if kind == "maxtime":
        return x.amax(dim=-1)
    if kind == "max2":
        return F.max_pool2d(x, 2)
    if kind == "max2s1":
        return F.max_pool2d(x, 2, stride=1)
    return x


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualPreActivation(nn.Module):
    """A ResNet-12 block (batch norm, running statistics) up to its last ReLU: the sum of the
    body and the shortcut is the pre-activation that the block's CSNs shift."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        block = ResidualBlock(cin, cout, "running")
        self.body, self.shortcut = block.body, block.shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class LayerStack(nn.Module):
    """Dense, conv or text layers with ReLU and optional pooling; records pre-activations and
    adds per-example shifts to chosen layers. A ``text`` layer embeds token ids (``vocabulary``
    rows) and convolves them; ``conv1d`` convolves over positions."""

    def __init__(self, spec, in_shape: tuple[int, ...], batch_norm: bool = False, vocabulary: int = 0):
        super().__init__()
        self.spec = spec
        self.ops = nn.ModuleList()
        self.norms = nn.ModuleList()
        shape = in_shape
        self.shapes: list[tuple[int, ...]] = []  # pre-activation shape of each layer
        for kind, width, pool in spec:
            plain_norm = batch_norm and kind != "res"  # residual blocks carry their own
            self.norms.append((nn.BatchNorm2d if kind == "conv" else nn.BatchNorm1d)(width) if plain_norm else nn.Identity())
            if kind in ("text", "conv1d"):
                first = nn.Sequential(TokenEmbedding(vocabulary, WORD_DIM), nn.Conv1d(WORD_DIM, width, 3, padding=1))
                self.ops.append(first if kind == "text" else nn.Conv1d(shape[0], width, 3, padding=1))
                shape = (width, in_shape[0] if kind == "text" else shape[1])
                self.shapes.append(shape)
                shape = (width,) if pool == "maxtime" else shape
            elif kind in ("conv", "res"):
                self.ops.append(nn.Conv2d(shape[0], width, 3, padding=1) if kind == "conv" else ResidualPreActivation(shape[0], width))
                shape = (width, *shape[1:])
                self.shapes.append(shape)
                shape = tuple(_pool(pool, torch.zeros(1, *shape)).shape[1:])
            else:
                self.ops.append(nn.Linear(shape[0] if len(shape) == 1 else _numel(shape), width))
                shape = (width,)
                self.shapes.append(shape)
        self.out_dim = _numel(shape)

    def forward(self, x, shifts: dict[int, torch.Tensor] | None = None, mode: str = "post_act"):
        """Returns (flattened features, pre-activations of every layer)."""
        pre = []
        h = x
        for i, (op, norm, (kind, _, pool)) in enumerate(zip(self.ops, self.norms, self.spec)):
            if kind == "dense" and h.dim() > 2:
                h = h.flatten(1)
            a = norm(op(h))
            pre.append(a)
            beta = None if shifts is None else shifts.get(i)
            if beta is None:
                h = F.relu(a)
            elif mode == "pre":
                h = F.relu(a + beta)
            elif mode == "post_act":
                h = F.relu(a) + F.relu(beta)
            else:
                h = F.relu(a) + beta
            h = _pool(pool, h)
        return h.flatten(1), pre


def relu_derivative(a: torch.Tensor) -> torch.Tensor:
    return (a > 0).to(a.dtype)


def df_information(a: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Direct feedback (csn.md step 2): I = sigma'(a) * dL/do, one C-vector per neuron.

    Args:
        a: [B, *neuron shape] pre-activations. e: [B, C] output errors.
    Returns:
        [B, *neuron shape, C].
    """
    return relu_derivative(a).unsqueeze(-1) * e.view(e.shape[0], *([1] * (a.dim() - 1)), e.shape[1])


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def parse_csn_layers(text: str, hidden: int) -> tuple[list[int], bool]:
    """(0-based hidden layers that carry CSNs, whether the output layer does)."""
    if text == "seed":
        return list(range(1, hidden)), True
    if text == "all":
        return list(range(hidden)), True
    layers, out = [], False
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "out":
            out = True
        elif part.isdigit() and 1 <= int(part) <= hidden:
            layers.append(int(part) - 1)
        else:
            raise UserError(f"method.csn_layers: '{part}' is not 'out' or a hidden layer number from 1 to {hidden}")
    return sorted(set(layers)), out


class CSN(Method):
    """Conditionally shifted neurons: a task memory of per-neuron shifts read by attention."""

    kinds = frozenset({"classification", "regression"})
    draws = frozenset({"regression"})
    Config = CSNConfig
    profiles = Path(__file__).with_name("profiles.yaml")

    def __init__(self, config: CSNConfig, task, ways: int):
        super().__init__(config, task, ways)
        name = config.architecture
        if name == "auto":
            name = "adaffn" if task.kind == "regression" else "text" if task.is_text else "seed"
        if (name == "adaffn") != (task.kind == "regression") or (name == "text") != task.is_text:
            data = "text" if task.is_text else "image" if task.kind == "classification" else task.kind
            raise UserError(f"method.architecture '{name}' does not fit {data} task '{task.name}'")
        arch = ARCHITECTURES[name]
        self.architecture = name
        in_shape = task.input_shape
        self.outputs = ways if task.kind == "classification" else 1
        self.base = LayerStack(arch.base, in_shape, config.batch_norm == "all", task.vocabulary)
        self.head = nn.Linear(self.base.out_dim, self.outputs)
        self.keys = LayerStack(arch.key, in_shape, config.batch_norm in ("keys", "all"), task.vocabulary)
        self.key_head = nn.Linear(self.keys.out_dim, config.key_size or arch.key_size)
        value_in = self.outputs if config.conditioning == "df" else 1
        self.value = _mlp([value_in, *(config.value_hidden or arch.value_hidden), 1])
        self.temperature = nn.Parameter(torch.tensor(10.0)) if (config.attention == "cosine" and config.learned_temperature) else None
        self.csn_hidden, self.csn_out = parse_csn_layers(config.csn_layers, len(arch.base))

    def info(self) -> dict:
        return {"architecture": self.architecture}

    def capture_blocker(self, training: bool) -> str | None:
        if self.config.conditioning == "grad":
            return "CSN's grad conditioning takes gradients inside the forward pass, which torch.compile cannot capture"
        return None

    # -- memory ---------------------------------------------------------------------

    def output_error(self, o: torch.Tensor, y: torch.Tensor, ways: int) -> torch.Tensor:
        """dL_i/do_i for each support example [B, outputs], in closed form."""
        if self.task.kind == "regression":
            return 2 * (o - y)
        e = torch.softmax(o[:, :ways], -1) - F.one_hot(y, ways).to(o.dtype)
        return F.pad(e, (0, self.outputs - ways))  # masked logits get no error

    def values(self, pre: list[torch.Tensor], o: torch.Tensor, y: torch.Tensor, ways: int) -> dict[int | str, torch.Tensor]:
        """Per-example values V [B, *neuron shape] of every CSN layer (key ``"out"`` for the output)."""
        e = self.output_error(o, y, ways)
        detach = self.config.detach_conditioning
        if self.config.conditioning == "grad":
            targets = [pre[i] for i in self.csn_hidden]
            grads = torch.autograd.grad(self._support_loss_sum(o, y, ways), targets, create_graph=not detach) if targets else []
            info = {i: g for i, g in zip(self.csn_hidden, grads)}
        out: dict[int | str, torch.Tensor] = {}
        for i in self.csn_hidden:
            a = pre[i]
            if self.config.conditioning == "df":
                out[i] = self._df_values(a, e.detach() if detach else e)
            else:
                out[i] = self._grad_values(info[i].detach() if detach else info[i])
        if self.csn_out:
            ee = e.detach() if detach else e
            if self.config.conditioning == "df":
                # the seed's output-layer information: (dL/do_j) * dL/do, one vector per output unit
                out["out"] = self.value(ee.unsqueeze(2) * ee.unsqueeze(1)).squeeze(-1)
            else:
                out["out"] = self.value(ee.unsqueeze(-1)).squeeze(-1)
        return out

    def _support_loss_sum(self, o, y, ways):
        if self.task.kind == "regression":
            return ((o - y) ** 2).sum()
        return F.cross_entropy(o[:, :ways], y, reduction="sum")

    def _df_values(self, a: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """V = v(I) for the direct-feedback information I = sigma'(a) * e (``df_information``).

        ReLU's derivative is 0 or 1, so v(I) is exactly sigma'(a) * (v(e) - v(0)) + v(0):
        the value MLP runs once per example instead of once per neuron.
        """
        gate = relu_derivative(a)
        positions = tuple(range(2, a.dim()))
        if positions and self.config.granularity == "channel":
            frac = gate.mean(dim=positions)  # mean over positions of sigma'(a) * e = (mean sigma'(a)) * e
            v = self.value(frac.unsqueeze(-1) * e.unsqueeze(1)).squeeze(-1)
            return v.view(*v.shape, *(1 for _ in positions))
        v_e = self.value(e).squeeze(-1)  # [B]
        v_0 = self.value(torch.zeros_like(e[:1])).squeeze(-1)  # [1]
        shape = (-1,) + (1,) * (a.dim() - 1)
        return gate * (v_e - v_0).view(shape) + v_0.view(shape)

    def _grad_values(self, g: torch.Tensor) -> torch.Tensor:
        if g.dim() > 2 and self.config.granularity == "channel":
            g = g.mean(dim=tuple(range(2, g.dim())), keepdim=True)
        return self.value(g.unsqueeze(-1)).squeeze(-1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        k = self.key_head(self.keys(x)[0])
        return F.normalize(k, dim=-1) if self.config.attention == "cosine" else k

    def attention(self, query_keys: torch.Tensor, support_keys: torch.Tensor) -> torch.Tensor:
        """[T, Q, d] x [T, S, d] -> softmax over each task's own support set [T, Q, S]."""
        sim = query_keys @ support_keys.transpose(1, 2)
        if self.temperature is not None:
            sim = sim * self.temperature
        return torch.softmax(sim, dim=-1)

    # -- forward --------------------------------------------------------------------

    def forward(self, batch: Batch, read_x: torch.Tensor | None = None) -> torch.Tensor:
        """Shifted query predictions [T, Q, ways or 1].

        Args:
            read_x: optional [T, R, ...] inputs whose read shifts replace the queries' own
                (R = 1 applies one query's shift to every query: ``plot-shifts``).
        """
        t, s = batch.support_x.shape[:2]
        q = batch.query_x.shape[1]
        sx = batch.support_x.flatten(0, 1)
        sy = batch.support_y.flatten(0, 1)
        # `grad` information needs autograd, also under evaluation's no_grad
        with torch.enable_grad() if self.config.conditioning == "grad" else contextlib.nullcontext():
            feats, pre = self.base(sx)
            o = self.head(feats)
            values = self.values(pre, o, sy, batch.ways)
        support_keys = self.embed(sx).view(t, s, -1)
        reader = batch.query_x if read_x is None else read_x
        alpha = self.attention(self.embed(reader.flatten(0, 1)).view(t, reader.shape[1], -1), support_keys)
        alpha = alpha.expand(t, q, s) if alpha.shape[1] != q else alpha

        def read(v: torch.Tensor) -> torch.Tensor:  # [T*S, *shape] -> [T*Q, *shape], in v's layout
            if v.dim() == 4 and not v.is_contiguous() and v.is_contiguous(memory_format=torch.channels_last):
                # Read over the stored NHWC order, so that no copy converts the layout there and back.
                nhwc = v.permute(0, 2, 3, 1)
                return (alpha @ nhwc.reshape(t, s, -1)).reshape(t * q, *nhwc.shape[1:]).permute(0, 3, 1, 2)
            shape = v.shape[1:]
            return (alpha @ v.reshape(t, s, -1)).reshape(t * q, *shape)

        shifts = {i: read(v) for i, v in values.items() if i != "out"}
        feats, _ = self.base(batch.query_x.flatten(0, 1), shifts, self.config.shift)
        out = self.head(feats)
        if "out" in values:
            out = out + read(values["out"])
        out = out.view(t, q, -1)
        return mask_logits(out, batch.ways) if self.task.kind == "classification" else out

    def pictures(self, batch: Batch, label: str) -> dict:
        """The seed README's shift pictures (sinusoid tasks)."""
        from methods.csn.plots import shift_figures

        return shift_figures(self, batch, label)

    def unadapted(self, batch: Batch) -> torch.Tensor:
        t, q = batch.query_x.shape[:2]
        out = self.head(self.base(batch.query_x.flatten(0, 1))[0]).view(t, q, -1)
        return mask_logits(out, batch.ways) if self.task.kind == "classification" else out

    def train_loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        if self.config.normalise_query_loss and "amplitude" in batch.extras:
            amp = batch.extras["amplitude"].view(-1, 1, 1)
            return task_loss(outputs / amp, batch.query_y / amp, self.task.kind).mean()
        return super().train_loss(outputs, batch)
