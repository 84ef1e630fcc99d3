"""Run folders and result files. Imports no torch, so that reports can be built without it."""
