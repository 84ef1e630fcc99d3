"""The shared part of the metric methods (ProtoNet, Matching Networks): an encoder, no head."""

from __future__ import annotations

from bench.interface.backbones import auto_backbone, build_backbone
from bench.interface.method import Method

IMAGE_BACKBONE = "conv4-64-max"  # the ProtoNets and Matching Nets papers' network


class EmbeddingMethod(Method):
    """Classifies queries by comparing encoder embeddings with the support set's. Its config
    has ``backbone`` (``auto``: conv4-64-max for images, text-cnn for sentences) and
    ``batch_norm``; the encoder's output size is ``embedding_dim``."""

    def __init__(self, config, task, ways: int):
        super().__init__(config, task, ways)
        self.backbone = auto_backbone(config.backbone, task, IMAGE_BACKBONE)
        self.encoder, self.embedding_dim = build_backbone(self.backbone, task, config.batch_norm)

    @property
    def max_ways(self) -> int | None:
        return None  # no classifier head: any number of ways

    @property
    def transductive(self) -> bool:
        return self.config.batch_norm == "transductive"

    def info(self) -> dict:
        return {"backbone": self.backbone}
