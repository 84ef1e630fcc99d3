"""``run --tensorboard``: training and validation curves mirrored into TensorBoard event files.

The JSONL files stay the record; this is a view for users who watch runs in TensorBoard,
as the seed's TensorFlow code offered.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import UserError


class TensorBoardMirror:
    """Writes ``train/*`` every iteration and ``val/*`` at every validation into ``folder``.

    On a resumed run, events at or after the resumed iteration that an earlier process wrote
    are dropped (``purge_step``), so no step appears twice.
    """

    def __init__(self, folder: Path, start_iteration: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--tensorboard needs the tensorboard package (pip install tensorboard)") from None
        self.writer = SummaryWriter(str(folder), purge_step=start_iteration or None)

    def _scalars(self, prefix: str, row: dict) -> None:
        for key, value in row.items():
            if key != "iteration" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{key}", value, row["iteration"])

    def train(self, row: dict) -> None:
        self._scalars("train", row)

    def validation(self, row: dict) -> None:
        self._scalars("val", row)
        self.writer.flush()  # validations are rare: make them visible at once

    def close(self) -> None:
        self.writer.close()
