# One-command set-up: every target creates .venv and installs what it needs (idempotent:
# the install step re-runs only when a requirements file or pyproject.toml changes).
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
OUT     ?= out/demo

.PHONY: all install demo test test-slow test-all wheel-check check-models info clean

all: demo

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=23.2" "setuptools>=64" wheel
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	@# lava-nc 0.10.0 declares Python <3.11; its runtime deps are in requirements.txt and
	@# neurodeploy/core/compat/lava.py fixes its one import failure on 3.11.
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

## The main job on the embedded default (grows as backends land).
demo: $(STAMP)
	$(BIN)/python examples/demo.py --out $(OUT)

## The test suite (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

## Only the slow tests (Cython and C++ standalone compilation: ~2-3 min on a fresh machine).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

## Everything, slow tests included.
test-all: $(STAMP)
	$(BIN)/python -m pytest

## Build the wheel and use it from outside the checkout (what `pip install neurodeploy-*.whl` gives).
wheel-check: $(STAMP)
	$(BIN)/python .ci/wheel_check.py

check-models: $(STAMP)
	$(BIN)/neurodeploy check models/*.yaml

info: $(STAMP)
	$(BIN)/neurodeploy info

clean:
	rm -rf $(VENV) out .pytest_cache
