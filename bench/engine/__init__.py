"""The engine: run configs, set-up, training, evaluation, timing and sweeps."""
