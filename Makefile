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
PY_SOURCES := $(shell find python -name '*.py' -o -name '*.pyi' -o -name py.typed)
# the release wheel: abi3 (CPython 3.11+), manylinux2014 by linking with zig, stripped
WHEEL_DIR := target/wheels
WHEEL_STAMP := $(WHEEL_DIR)/.built

.PHONY: help
help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'maturin>=1.5,<2'

$(BUILD_STAMP): $(BIN)/python $(RUST_SOURCES) $(PY_META)
	# an extension left from a version-specific build would shadow the abi3 one
	rm -f python/peerpool/_core.cpython-*.so
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop --release --extras test,dev --quiet
	touch $@

.PHONY: setup
setup: $(BUILD_STAMP) system-deps  ## create .venv, build the extension (release), install with test and dev extras

# A separate cargo target directory from `maturin develop` (it is per target
# triple): each keeps its own incremental build, so after the first build a
# change costs a recompile of our crate only, in both.
$(WHEEL_STAMP): $(BUILD_STAMP) $(RUST_SOURCES) $(PY_META) $(PY_SOURCES) README.md LICENSE
	rm -f $(WHEEL_DIR)/peerpool-*.whl
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/maturin build --release --zig --compatibility manylinux2014 \
		--out $(WHEEL_DIR) --quiet
	touch $@

.PHONY: wheel
wheel: $(WHEEL_STAMP)  ## build the release wheel into target/wheels (abi3, manylinux2014, stripped)

.PHONY: system-deps
system-deps:  ## Debian packages the integration tests use (tor, microsocks) and the regtest node
	bash scripts/install-system-deps.sh

# NO_MKDOCS_2_WARNING: the Material theme prints a notice about MkDocs 2.0 on every build otherwise
.PHONY: docs
docs: setup  ## build the documentation site into site/ (mkdocs --strict: any warning fails the build)
	NO_MKDOCS_2_WARNING=1 PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/mkdocs build --strict --quiet

.PHONY: test
test: setup wheel docs  ## run every test: the docs build, cargo test, then pytest (benchmarks as quick smoke runs; the wheel in a fresh venv)
	cargo test --release --quiet
	$(BIN)/pytest -q -p no:cacheprovider --benchmark-disable $(PYTEST_ARGS)

.PHONY: bench
bench: setup  ## run the benchmarks with timing and print ours / baseline / ratio per kernel
	$(BIN)/pytest -q -p no:cacheprovider benches --benchmark-enable --benchmark-only \
		--benchmark-columns=min,median,mean,rounds --benchmark-sort=name $(PYTEST_ARGS)
	$(BIN)/python scripts/update_readme_bench.py

.PHONY: demo
demo: setup  ## the main job end to end: scan real block files, sync a regtest node (with a 52 MB block), verify and index every block; then three mesh nodes talk, a world node and three agents in pools, a Chord ring survives a killed node
	$(BIN)/peerpool scan $(DATA)/blk_0_to_4.dat $(DATA)/blk_3A.dat $(DATA)/blk_4A.dat \
		$(DATA)/blk_5A.dat $(DATA)/blocks1-256 $(DATA)/277647.dat $(DATA)/testnet_block.raw
	$(BIN)/python scripts/demo.py
	$(BIN)/python scripts/demo_mesh.py
	$(BIN)/python scripts/demo_chord.py
	$(BIN)/python scripts/demo_mesh_pools.py

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
	rm -rf target site $(VENV) python/peerpool/_core*.so
