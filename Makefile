# Two commands do everything on a fresh machine (Python 3.11 + pip):
#   make demo   -> create .venv, install, run the notebook pipeline on SynHet (no download)
#   make test   -> create .venv, install, run the test suite (unit tests + nbval on every notebook)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup kernel clean-runs bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (hetskel)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m hetskel.runs.demo

test: $(STAMP)
	$(BIN)/python tests/smoke_notebooks.py
	$(BIN)/python -m pytest -q -p no:cacheprovider tests runs/ci/notebooks --nbval-lax --timeout 900

bench: $(STAMP)
	$(BIN)/python -m hetskel.bench --quick --out runs/bench/bench_quick.json
