# Every target sets itself up from nothing: a fresh clone needs only python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-browser test-all lint format demo shipped-model gradcheck bench clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# rnnkit's fused recurrence kernel is compiled on first use (about a minute) into KERNEL_CACHE, which
# the targets here keep inside build/ (users' runs use ~/.cache/rnnkit/kernels).
KERNEL_CACHE := $(CURDIR)/build/kernels
export RNNKIT_KERNEL_CACHE := $(KERNEL_CACHE)

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser"

# The viewer in a real browser: Playwright for Python driving Debian's chromium (apt-get install chromium).
# Screenshots of each view go to build/viewer/.
test-browser: $(STAMP)
	$(PY) -m pytest -q -m browser

test-all: $(STAMP)
	$(PY) -m pytest -q

# ruff's checks and formatter (settings in pyproject.toml); `make test` runs the same checks as tests.
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# The default preset (an LSTM on tinyshakespeare, which ships inside the package) trained for
# DEMO_SECONDS of training time into runs/demo (replacing an earlier demo), then a sample from it.
DEMO_SECONDS ?= 60
demo: $(STAMP)
	rm -rf runs/demo
	$(VENV)/bin/rnnkit train --out runs/demo --max-time $(DEMO_SECONDS)
	$(VENV)/bin/rnnkit sample runs/demo --prime "ROMEO:" --length 400 --temperature 0.8 --seed 1

# The model shipped as `rnnkit sample shakespeare`: a two-layer character LSTM on tinyshakespeare
# (SHIP_SETTINGS), trained for SHIP_STEPS steps on one thread, packaged into
# src/rnnkit/pretrained/shakespeare with its card (tools/ship_model.py).
SHIP_STEPS ?= 5000
SHIP_SETTINGS := --set model.hidden_size=320 --set model.num_layers=2 --set model.dropout=0.25 \
	--set data.window=128 --set train.batch_size=32 --set optim.lr=3e-3 --set optim.warmup_steps=100 \
	--set data.eval_tokens=0 --set train.eval_every=500 --set train.max_time=0 --set train.threads=1
shipped-model: $(STAMP)
	rm -rf runs/shipped-shakespeare
	$(VENV)/bin/rnnkit train --out runs/shipped-shakespeare --max-steps $(SHIP_STEPS) $(SHIP_SETTINGS)
	$(PY) tools/ship_model.py runs/shipped-shakespeare shakespeare \
		--description "character LSTM on tinyshakespeare (two layers of 320, dropout 0.25, windows of 128)" \
		--command "rnnkit train --max-steps $(SHIP_STEPS) $(SHIP_SETTINGS)"

gradcheck: $(STAMP)
	$(VENV)/bin/rnnkit gradcheck

bench: $(STAMP)
	$(PY) benchmarks/layers.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
