"""The benchmark harness, in layers (each imports only the ones above it):

- ``errors``, ``registry``, ``config``, ``files``, ``stats``: shared by every layer.
- ``interface/``: what a method implements (``Method``, ``Batch``) and builds on (backbones).
- ``data/``: task specs, datasets on disk, episodes.
- ``results/``: run folders and result files (no torch).
- ``engine/``: run configs, training, evaluation, timing, sweeps.
- ``report/``: tables and plots from result files only (no torch).
"""
