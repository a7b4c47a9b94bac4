# peerpool: `make help` lists the targets. Every target sets up what it needs
# (virtualenv, extension build, system packages, regtest node) on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
# a stamp per set-up step, so a second `make test` rebuilds only what changed
BUILD_STAMP := $(VENV)/.built
RUST_SOURCES := $(shell find rust -name '*.rs') Cargo.toml
PY_META := pyproject.toml

.PHONY: help
help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'maturin>=1.5,<2'

$(BUILD_STAMP): $(BIN)/python $(RUST_SOURCES) $(PY_META)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop --release --extras test --quiet
	touch $@

.PHONY: setup
setup: $(BUILD_STAMP) system-deps  ## create .venv, build the extension (release), install with test extras

.PHONY: system-deps
system-deps:  ## Debian packages the integration tests use (tor, microsocks) and the regtest node
	bash scripts/install-system-deps.sh

.PHONY: test
test: setup  ## run every test: cargo test, then pytest (benchmarks as quick smoke runs)
	cargo test --release --quiet
	$(BIN)/pytest -q -p no:cacheprovider --benchmark-disable $(PYTEST_ARGS)

.PHONY: bench
bench: setup  ## run the benchmarks with timing and print ours / baseline / ratio per kernel
	$(BIN)/pytest -q -p no:cacheprovider benches --benchmark-enable --benchmark-only \
		--benchmark-columns=min,median,mean,rounds --benchmark-sort=name $(PYTEST_ARGS)
	$(BIN)/python scripts/update_readme_bench.py

.PHONY: demo
demo: setup  ## the main job end to end: scan real block files, then sync a regtest node (with a 52 MB block) and verify every block, then three mesh nodes talk
	$(BIN)/peerpool scan $(DATA)/blk_0_to_4.dat $(DATA)/blk_3A.dat $(DATA)/blk_4A.dat \
		$(DATA)/blk_5A.dat $(DATA)/blocks1-256 $(DATA)/277647.dat $(DATA)/testnet_block.raw
	$(BIN)/python scripts/demo.py
	$(BIN)/python scripts/demo_mesh.py

.PHONY: lint
lint: setup  ## ruff, mypy, cargo fmt --check, cargo clippy -D warnings, stubtest of _core.pyi
	$(BIN)/ruff check python tests benches
	$(BIN)/mypy
	cargo fmt --check
	cargo clippy --all-targets --quiet -- -D warnings
	PYO3_PYTHON=$(CURDIR)/$(BIN)/python cargo clippy --all-targets --features python --quiet -- -D warnings
	MYPYPATH=python $(BIN)/python -m mypy.stubtest peerpool._core

.PHONY: fmt
fmt: setup  ## format Rust and Python in place
	cargo fmt
	$(BIN)/ruff format python tests benches
	$(BIN)/ruff check --fix python tests benches

.PHONY: clean
clean:  ## remove build products and the virtualenv
	rm -rf target $(VENV) python/peerpool/_core*.so
