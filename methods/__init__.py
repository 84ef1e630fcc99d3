"""The meta-learning methods: one package per method, named by its folder (``methods/csn/`` is
``csn``), each exposing one ``Method`` subclass. Adding a folder adds a method."""

from bench.interface.method import Method
from bench.registry import PackageRegistry

METHODS = PackageRegistry("method", __name__, __path__, Method)

__all__ = ["METHODS", "Method"]
