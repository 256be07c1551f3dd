# Two commands on a fresh machine: `make bench` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
export OMP_NUM_THREADS := 1

.PHONY: setup bench test browser perf lab clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name sieve --display-name "Python (sieve)" --env OMP_NUM_THREADS 1
	touch $(STAMP)

bench: setup
	$(BIN)/bench run default --workers 2

test: setup browser
	$(BIN)/python -m pytest -n 2

# Best effort: Debian's chromium for the report's headless-browser test (skipped without it).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  timeout 600 sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium' \
	  >/dev/null 2>&1; } || echo "chromium not installed: the browser test will be skipped"

perf: setup
	$(BIN)/python benchmarks/perf.py

lab: setup
	@[ -e notebooks/explore.ipynb ] || cp bench/notebooks/explore.ipynb notebooks/
	$(BIN)/jupyter lab notebooks $(ALLOW_ROOT)

clean:
	rm -rf $(VENV) results/default results/smoke results/.cache
