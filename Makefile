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

# The demo runs the same commands a user runs on a real DCASE folder, on a synthetic 1B set.
DEMO_DATA := $(DEMO_DIR)/data
DEMO_FEATURES := $(DEMO_DIR)/features
DEMO_FLAGS := --flagfile=configs/1b_ef_spsmt.flags --data_dir=$(DEMO_DATA) --features_dir=$(DEMO_FEATURES)

$(DEMO_DATA)/meta.csv: | $(VENV)/.installed
	$(PY) -m asc_keras.data.synthetic --task=1b --out=$(DEMO_DATA) --clips_per_class=60 --overwrite

demo: $(VENV)/.installed $(DEMO_DATA)/meta.csv
	$(PY) prepare.py $(DEMO_FLAGS) --num_workers=2

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(PY) -m ruff check .

bench: $(VENV)/.installed
	$(PY) bench/prepare_bench.py

clean:
	rm -rf $(VENV) $(DEMO_DIR)
