# Two commands on a fresh clone: `make demo` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch is pinned: an unpinned torch pulls a multi-GB CUDA build on CPU-only machines.
TORCH := torch==2.13.0

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,operon,rebound]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/eqlgn run --law spring --dim 2 --n 4 --edge eql

lint: install
	$(BIN)/ruff check eqlgn tests experiments

test: lint
	$(BIN)/python -m pytest -q

test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/eqlgn bench all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache data runs
