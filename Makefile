# Two commands on a fresh machine: `make bench` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
export OMP_NUM_THREADS := 1

.PHONY: setup bench test perf lab clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name sieve --display-name "Python (sieve)" --env OMP_NUM_THREADS 1
	touch $(STAMP)

bench: setup
	$(BIN)/bench run default --workers 2

test: setup
	$(BIN)/python -m pytest

perf: setup
	$(BIN)/python -m bench.perf

lab: setup
	$(BIN)/jupyter lab notebooks $(ALLOW_ROOT)

clean:
	rm -rf $(VENV) results/default results/smoke results/.cache
