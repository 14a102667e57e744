# Two commands matter (README): `make book` and `make test`. Both create the virtual
# environment on first use: torch and torchvision, then this package (which compiles the
# sampling ops) with everything the book and the tests need.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PROFILE ?= cpu
# The tested torch; override for another (never newer than 2.14.1 is known to work here).
TORCH_SPEC ?= "torch>=2.4,<=2.14.1" "torchvision>=0.19,<=0.29.1"
# One CUDA architecture is enough to prove the CUDA sources build where a toolkit exists.
export TORCH_CUDA_ARCH_LIST ?= 9.0
export MAX_JOBS ?= 2

BIN := $(VENV)/bin
STAMP := $(VENV)/.repro-installed

.PHONY: help venv test book reproduce lint clean

help:
	@echo "make book       build the book from the committed results (sets up .venv if needed)"
	@echo "make test       run the whole test suite (sets up .venv if needed)"
	@echo "make reproduce  re-run every notebook (PROFILE=cpu|smoke|full) and build the book"
	@echo "make lint       ruff"

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel ninja
	$(BIN)/python -m pip install $(TORCH_SPEC)
	$(BIN)/python -m pip install --no-build-isolation -e ".[dev,onnx]"
	touch $(STAMP)

test: $(STAMP)
	@$(BIN)/python -m pytest -q -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

book: $(STAMP)
	$(BIN)/repro book

reproduce: $(STAMP)
	set -e; for name in $$($(BIN)/repro list --names); do \
		$(BIN)/repro run $$name --profile $(PROFILE); \
	done
	$(BIN)/repro book

lint: $(STAMP)
	$(BIN)/ruff check repro tests notebooks
	$(BIN)/ruff format --check repro tests notebooks

clean:
	rm -rf book/_build build *.egg-info repro/_C*.so
