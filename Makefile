# Two commands do everything on a fresh machine:
#   make demo   # creates .venv, installs, runs the Tetris smoke reproduction
#   make test   # same set-up, runs the test suite and the docstring examples of models/ and datamodules/
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# Pinned first so that no dependency resolves torch to a CUDA build (several GB).
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-all results clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[test]"
	touch $(STAMP)

demo: venv
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) reproduce/tetris.py --preset smoke

test: venv
	$(PY) -m pytest -q -m "not slow" --doctest-modules models datamodules reproduce tests

test-all: venv
	$(PY) -m pytest -q --doctest-modules models datamodules reproduce tests

clean:
	rm -rf runs results/smoke
