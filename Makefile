# Two commands on a fresh machine (Python 3.11, pip, make, apt):
#   make run   - install into .venv and start the dashboard on the embedded model
#   make test  - install into .venv (and Debian's chromium for browser tests) and run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
# Loopback only by default; serving a team means HOST=0.0.0.0 plus the team settings in README.md.
HOST ?= 127.0.0.1

.PHONY: run test lint install install-dev browser peers benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-compile: pip would byte-compile all 21k files of the wheels (about 90 s of CPU); Python compiles the third
# it imports on first use instead.
$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --no-compile -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian's chromium drives the browser tests (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

# dashboard.serve loads the model and computes the default page's analysis, then starts Streamlit with these flags
# (EXPLAIN_WARM_UP=0 starts at once).
run: install
	$(BIN)/python -m dashboard.serve --server.address $(HOST) --server.port $(PORT)

lint: install-dev
	$(BIN)/ruff check .

# The suite starts many Python processes (servers, memory runs, Ray workers, a killed run), each importing torch and
# transformers. Where the environment sets PYTHONDONTWRITEBYTECODE, none of them keeps its bytecode and each compiles
# those packages afresh (about 4-20 s of CPU a process), so the tests keep theirs in .pycache/ of this checkout.
TEST_ENV := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/.pycache

test: install-dev browser
	$(BIN)/ruff check .
	$(BIN)/mypy explain
	$(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider

# Peers (transformers-interpret, bertviz) install under the runtime pins, so torch and transformers stay as they are.
# pip refuses extras in a constraints file (ray[data]), so the runtime pins are read without them.
$(VENV)/constraints.txt: requirements.txt | $(BIN)/python
	sed 's/\[[^]]*\]//' requirements.txt > $@

peers: install-dev $(VENV)/constraints.txt
	$(BIN)/pip install --quiet -r requirements-bench.txt -c $(VENV)/constraints.txt

benchmark: peers browser
	$(BIN)/python benchmarks/run_all.py

# ferret-xai 0.4.2 pins transformers<5, captum<0.8 and numpy<2, so it gets a virtualenv of its own
# (benchmarks/ferret/.venv); the main venv only supplies the project's probabilities for the wrapper check.
.PHONY: benchmark-ferret
benchmark-ferret: install
	test -x benchmarks/ferret/.venv/bin/python || $(PYTHON) -m venv benchmarks/ferret/.venv
	benchmarks/ferret/.venv/bin/pip install --quiet -r benchmarks/ferret/requirements.txt
	$(BIN)/python benchmarks/ferret/run_ferret.py --project-scores
	benchmarks/ferret/.venv/bin/python benchmarks/ferret/run_ferret.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .pycache
