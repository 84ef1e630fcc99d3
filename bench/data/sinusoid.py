"""Sinusoid regression episodes (no data on disk)."""

from __future__ import annotations

import math
import random

import torch

from bench.data.episodes import Episode, PyRandomStream, fingerprint
from bench.errors import UserError
from bench.interface.method import Batch


class SinusoidSource:
    """Sinusoid regression (Finn et al. 2017, Sec. 5.1): y = A sin(x - phi).

    A ~ U[0.1, 5.0], phi ~ U[0, pi], x ~ U[-5, 5]. Drawn from the same kind of stream as
    the classification episodes, so seeds behave identically.
    """

    identity = {"dataset": "sinusoid", "generated": True}
    amplitude = (0.1, 5.0)
    phase = (0.0, math.pi)
    x_range = (-5.0, 5.0)

    def check(self, ways: int, shots: int, queries: int, what: str) -> None:
        if shots < 1 or queries < 1:
            raise UserError(f"{what}: shots and queries must be at least 1 (got {shots}, {queries})")

    def sample(self, ways: int, shots: int, queries: int, stream: PyRandomStream) -> Episode:
        with stream.active():
            amp = random.uniform(*self.amplitude)
            phase = random.uniform(*self.phase)
            xs = tuple(random.uniform(*self.x_range) for _ in range(shots + queries))
        payload = (amp, phase, xs)
        return Episode(fingerprint(payload), (), payload)

    def collate(self, episodes: list[Episode], ways: int, shots: int) -> Batch:
        amp = torch.tensor([e.payload[0] for e in episodes])
        phase = torch.tensor([e.payload[1] for e in episodes])
        x = torch.tensor([e.payload[2] for e in episodes]).unsqueeze(-1)  # [T, S+Q, 1]
        y = amp.view(-1, 1, 1) * torch.sin(x - phase.view(-1, 1, 1))
        return Batch(
            x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:], 0,
            {"amplitude": amp, "phase": phase},
        )


def sources(task, root) -> dict[str, SinusoidSource]:
    source = SinusoidSource()
    return {"train": source, "val": source, "test": source}
