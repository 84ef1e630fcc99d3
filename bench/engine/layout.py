"""The memory layout of a run's images and convolution weights (setting ``memory_format``).

``channels_last`` stores every image channel-innermost (NHWC). On this project's CPU, oneDNN's
convolutions run faster on it than on the default NCHW layout, for forward and backward
(``cli.py floor`` measures both on each method's own network). A layout changes the order of
floating-point sums, not what is computed: results equal the contiguous ones within float
tolerance, and the episodes are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

LAYOUTS = ("contiguous", "channels_last")


@dataclass(frozen=True)
class Layout:
    """The layout a run uses (``used``), and why."""

    setting: str
    used: str
    reason: str

    @property
    def channels_last(self) -> bool:
        return self.used == "channels_last"

    def to_dict(self) -> dict:
        return {"setting": self.setting, "used": self.used, "reason": self.reason}


def has_conv2d(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def choose(setting: str, module: nn.Module, device: torch.device) -> Layout:
    """The layout for ``memory_format``: as set, or for ``auto`` channels_last on the CPU where the
    network has 2-d convolutions (measured faster there for every method: README, "Speed on the
    CPU"), contiguous elsewhere (nothing to gain without 2-d convolutions; not yet measured on a GPU)."""
    if setting != "auto":
        return Layout(setting, setting, f"memory_format={setting}")
    if not has_conv2d(module):
        return Layout(setting, "contiguous", "auto: contiguous (no 2-d convolutions)")
    if device.type != "cpu":
        return Layout(setting, "contiguous", f"auto: contiguous on {device.type} (channels_last not measured there)")
    return Layout(setting, "channels_last", "auto: channels_last on the CPU (2-d convolutions)")


def apply(module: nn.Module, layout: Layout) -> nn.Module:
    """Lays ``module``'s 4-d weights out as ``layout`` says (in place); returns it."""
    fmt = torch.channels_last if layout.channels_last else torch.contiguous_format
    return module.to(memory_format=fmt)
