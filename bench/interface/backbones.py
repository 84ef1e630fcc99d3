"""Backbones shared by the methods, kept as plain ``nn.Sequential`` so ``torch.func`` can use them."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UserError
from bench.interface.task import TaskSpec
from bench.registry import Registry

BatchNorm = Literal["transductive", "running", "none"]


class TransductiveBatchNorm2d(nn.Module):
    """Batch norm that always uses the current batch's statistics (MAML's transductive mode).

    ``fused`` selects PyTorch's batch-norm kernel. Under ``torch.func.vmap`` that kernel's
    double backward gives wrong second-order gradients for the layers below it (found by
    this project's batched-vs-reference MAML test, torch 2.14), so vmapped code switches to
    the composite form with ``composite_batch_norm``.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.fused = True
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        # One-pass statistics and a per-channel affine map keep few full-size tensors in the graph;
        # sums scaled afterwards (not means) differentiate to broadcasts instead of full-size divisions.
        inv_n = 1.0 / (x.numel() // x.shape[1])
        mean = x.sum(dim=(0, 2, 3), keepdim=True) * inv_n
        var = (x * x).sum(dim=(0, 2, 3), keepdim=True) * inv_n - mean * mean
        scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(var.clamp_min(0) + self.eps)
        return torch.addcmul(self.bias.view(1, -1, 1, 1) - mean * scale, x, scale)


@contextlib.contextmanager
def composite_batch_norm(module: nn.Module) -> Iterator[None]:
    """Uses the composite (vmap-safe) form in every ``TransductiveBatchNorm2d`` of ``module``."""
    layers = [m for m in module.modules() if isinstance(m, TransductiveBatchNorm2d)]
    for m in layers:
        m.fused = False
    try:
        yield
    finally:
        for m in layers:
            m.fused = True


class SpatialMean(nn.Module):
    """Mean over the spatial positions, [N, C, H, W] -> [N, C]. Unlike ``AdaptiveAvgPool2d``,
    it has a ``vmap`` batching rule (no slow per-task fallback)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def norm_layer(channels: int, batch_norm: BatchNorm) -> nn.Module:
    """``transductive`` always normalises with the current batch's statistics (MAML's choice);
    ``running`` keeps running statistics for evaluation."""
    if batch_norm == "none":
        return nn.Identity()
    if batch_norm == "transductive":
        return TransductiveBatchNorm2d(channels)
    return nn.BatchNorm2d(channels)


def conv_block(cin: int, cout: int, pool: Literal["max", "stride"], batch_norm: BatchNorm) -> nn.Sequential:
    stride = 2 if pool == "stride" else 1
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), norm_layer(cout, batch_norm), nn.ReLU()]
    if pool == "max":
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def conv4(
    in_channels: int, filters: int, pool: Literal["max", "stride"], batch_norm: BatchNorm, spatial_mean: bool
) -> nn.Sequential:
    """Conv-4 (Vinyals et al. 2016): four 3x3 blocks. ``spatial_mean`` averages the last map
    (MAML's Omniglot network); otherwise it is flattened."""
    blocks = [conv_block(in_channels if i == 0 else filters, filters, pool, batch_norm) for i in range(4)]
    tail: list[nn.Module] = [SpatialMean()] if spatial_mean else [nn.Flatten()]
    return nn.Sequential(*blocks, *tail)


class ResidualBlock(nn.Module):
    """ResNet-12 block: three 3x3 conv + norm layers, a 1x1 conv shortcut, ReLU, 2x2 max-pool."""

    def __init__(self, cin: int, cout: int, batch_norm: BatchNorm):
        super().__init__()
        bias = batch_norm == "none"  # a bias before batch norm would only be cancelled
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=bias), norm_layer(cout, batch_norm)]
            if i < 2:
                layers.append(nn.ReLU())
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=bias), norm_layer(cout, batch_norm))
        self.out = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.shortcut(x))


def resnet12(in_channels: int, widths: tuple[int, ...], batch_norm: BatchNorm) -> nn.Sequential:
    """ResNet-12 (Oreshkin et al. 2018; Lee et al. 2019): four residual blocks, then the spatial mean."""
    blocks = [ResidualBlock(cin, cout, batch_norm) for cin, cout in zip((in_channels, *widths[:-1]), widths)]
    return nn.Sequential(*blocks, SpatialMean())


class MaxOverTime(nn.Module):
    """[N, C, L] -> [N, C]: each filter's largest response anywhere in the sentence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=-1)


class TokenEmbedding(nn.Embedding):
    """Word embeddings laid out for ``Conv1d``: [N, L] token ids -> [N, D, L]. Token 0 is padding."""

    def __init__(self, vocabulary: int, dim: int):
        super().__init__(vocabulary, dim, padding_idx=0)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return super().forward(tokens).transpose(1, 2)


WORD_DIM = 64  # word embedding size of the text networks (text-cnn, CSN's text architecture)


def text_cnn(vocabulary: int, dim: int = WORD_DIM, filters: int = 128) -> nn.Sequential:
    """A convolutional sentence encoder in the manner of Kim (2014): word embeddings, two
    width-3 convolutions with ReLU, max over positions. Recurrent encoders are not used because
    MAML's ``torch.func`` implementations need a network that ``vmap`` batches natively."""
    return nn.Sequential(
        TokenEmbedding(vocabulary, dim), nn.Conv1d(dim, filters, 3, padding=1), nn.ReLU(),
        nn.Conv1d(filters, filters, 3, padding=1), nn.ReLU(), MaxOverTime(),
    )


class BagOfWords(nn.Module):
    """[N, L] token ids -> [N, D]: the mean embedding of the non-padding tokens (token 0 is padding)."""

    def __init__(self, vocabulary: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, dim, padding_idx=0)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        words = (tokens != 0).unsqueeze(-1).to(self.embedding.weight.dtype)
        return (self.embedding(tokens) * words).sum(dim=1) / words.sum(dim=1).clamp(min=1)


def text_bow(vocabulary: int, dim: int = WORD_DIM, width: int = 128) -> nn.Sequential:
    """A bag of words: the mean word embedding of the window, then one dense layer with ReLU. It
    ignores word order, the blank's neighbours included: a floor for what an encoder adds."""
    return nn.Sequential(BagOfWords(vocabulary, dim), nn.Linear(dim, width), nn.ReLU())


BACKBONES: Registry[Callable[..., nn.Sequential]] = Registry("backbone")
BACKBONES.add("conv4-64-max", lambda c, bn: conv4(c, 64, "max", bn, spatial_mean=False))  # ProtoNets
BACKBONES.add("conv4-64-stride", lambda c, bn: conv4(c, 64, "stride", bn, spatial_mean=True))  # MAML Omniglot
BACKBONES.add("conv4-32-max", lambda c, bn: conv4(c, 32, "max", bn, spatial_mean=False))  # MAML mini-ImageNet
BACKBONES.add("resnet12", lambda c, bn: resnet12(c, (64, 160, 320, 640), bn))  # MetaOptNet's widths
BACKBONES.add("resnet12-narrow", lambda c, bn: resnet12(c, (64, 96, 128, 256), bn))  # adaResNet's widths (csn.md)
# Finn et al.'s sinusoid regressor body: 1-40-40 ReLU (the head adds the output layer).
BACKBONES.add("mlp-40-40", lambda c, bn: nn.Sequential(nn.Linear(c, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU()))
# Sentences (token ids); no normalisation layers, so the batch-norm setting does not apply.
BACKBONES.add("text-cnn", lambda vocabulary, bn: text_cnn(vocabulary))
BACKBONES.add("text-bow", lambda vocabulary, bn: text_bow(vocabulary))
TEXT_BACKBONES = frozenset({"text-cnn", "text-bow"})


def auto_backbone(name: str, task: TaskSpec, image_default: str) -> str:
    """``name``, with ``auto`` read as text-cnn for sentences and ``image_default`` otherwise."""
    if name != "auto":
        return name
    return "text-cnn" if task.is_text else image_default


def build_backbone(name: str, task: TaskSpec, batch_norm: BatchNorm) -> tuple[nn.Sequential, int]:
    """The backbone for ``task``'s inputs and the size of its output feature vector.

    Raises:
        UserError: a text backbone for a task of images or vectors, or the other way round.
    """
    factory = BACKBONES.get(name)
    if (name in TEXT_BACKBONES) != task.is_text:
        wanted = "a text backbone (" + ", ".join(sorted(TEXT_BACKBONES)) + ")" if task.is_text else "an image or vector backbone"
        raise UserError(f"backbone '{name}' does not fit task '{task.name}': it needs {wanted}")
    net = factory(task.channels, batch_norm)
    with torch.no_grad():
        was = net.training
        net.eval() if batch_norm == "running" else net.train()
        dim = net(task.example_inputs(2)).shape[1]
        net.train(was)
    return net, dim
