# `make demo` and `make test` set up .venv first (scripts/setup.sh; a no-op once done).
PY := .venv/bin/python
# Use the shared data beside a checkout when no data root was chosen.
export CSN_BENCH_DATA ?= $(if $(wildcard ../shared/data/omniglot),$(abspath ../shared/data),$(CURDIR)/data)

.PHONY: setup demo test test-fast
setup:
	@scripts/setup.sh

demo: setup
	$(PY) cli.py demo

# One pytest worker per core (pytest-xdist); the heavy tests stay together on one of them.
test: setup
	$(PY) -m pytest -q -n auto --dist loadgroup

test-fast: setup
	$(PY) -m pytest -q -n auto --dist loadgroup -m "not slow and not heavy"
