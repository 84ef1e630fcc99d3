"""The meta-learning methods. Importing this package registers each one in ``METHODS``."""

from bench.method import METHODS, Method
from methods import csn, maml, protonet  # noqa: F401  (registers)

__all__ = ["METHODS", "Method"]
