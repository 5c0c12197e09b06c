# Two entry points: `make demo` and `make test`. Both create (or reuse) .venv inside the repo.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= cpu,dev
DEMO_DIR ?= demo_out

.PHONY: demo test lint bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m asc_keras.demo --work_dir=$(DEMO_DIR)

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(PY) -m ruff check .

bench: $(VENV)/.installed
	$(PY) bench/prepare_bench.py

clean:
	rm -rf $(VENV) $(DEMO_DIR)
