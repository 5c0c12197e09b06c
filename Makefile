# Two entry points, `make demo` and `make test` (plus `make test-fast`, `make lint`, `make fmt`
# while editing). Each creates (or reuses) .venv inside the repo.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# beam: tests/test_beam.py runs the Beam engine (adds ~12 s of install; protobuf 7.36 -> 6.33)
# micro: tests/test_micro.py runs TensorFlow Lite for Microcontrollers (tflite-micro)
EXTRAS ?= cpu,dev,beam,micro
TEST_WORKERS ?= 2
DEMO_DIR ?= demo_out
# TensorFlow's portable kernels, as on CPUs without AVX-512 (most laptops and cloud machines) and
# GPUs: TensorFlow turns its oneDNN kernels on by itself only on AVX-512 VNNI-class CPUs, so the
# tests and the demo run what every machine runs. `make test TF_ENABLE_ONEDNN_OPTS=1` tries oneDNN.
export TF_ENABLE_ONEDNN_OPTS ?= 0

.PHONY: demo demo-clean test test-fast fmt lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

# The demo runs the same commands a user runs on real DCASE folders, on a synthetic 1B set:
# the paper's Table 4 with a shortened recipe (3 runs), then export and predict with EF + SPSMT.
DEMO_DATA := $(DEMO_DIR)/data
DEMO_FEATURES := $(DEMO_DIR)/features
DEMO_TABLES := $(DEMO_DIR)/tables
DEMO_RUN := $(DEMO_TABLES)/runs/seed0/1b_ef_spsmt

$(DEMO_DATA)/meta.csv: | $(VENV)/.installed
	$(PY) -m asc_keras.data.synthetic --task=1b --out=$(DEMO_DATA) --clips_per_class=60 --overwrite

# CPU-sized training: 150 steps of batch 32 per run (a few minutes on 2 cores); the paper runs
# 12,000 x 64, and the report's first line says the recipe was shortened.
DEMO_TRAIN := --train_steps=150 --batch_size=32 --eval_every=50 --checkpoint_every=50
DEMO_CLIP = $$(sed -n 2p $(DEMO_DATA)/evaluation_setup/fold1_evaluate.csv | cut -f1)

demo: $(VENV)/.installed $(DEMO_DATA)/meta.csv
	$(PY) reproduce.py --tables=4 --data_dir=$(DEMO_DATA) --features_dir=$(DEMO_FEATURES) \
		--out=$(DEMO_TABLES) --num_workers=2 $(DEMO_TRAIN)
	$(PY) export.py --model_dir=$(DEMO_RUN) --export_dir=$(DEMO_DIR)/export \
		--features_dir=$(DEMO_FEATURES) --overwrite
	$(PY) predict.py --model=$(DEMO_DIR)/export/model_int8.tflite $(DEMO_DATA)/$(DEMO_CLIP)

# The whole suite, as CI runs it (.ci/run), with the 15 slowest tests listed at the end.
test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) --durations=15

# The edit-and-rerun loop (a few minutes on 2 cores): every unit and oracle test and one flagfile
# per network family; full-size models, subprocess scripts and end-to-end runs are marked `slow`.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" --durations=10

# Rewrite the tree in the project's style (ruff, settings in pyproject.toml).
fmt: $(VENV)/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Check the style without changing anything (tests/test_style.py runs the same checks).
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(VENV)/.installed
	$(PY) bench/prepare_bench.py

# Start the demo again from scratch, keeping the virtual environment.
demo-clean:
	rm -rf $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(DEMO_DIR)
