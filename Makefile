# fraudops — the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo dashboard test unit check lint typecheck bench bench-serve chromium assets clean

# uv installs the ~200 packages in about a minute where pip takes four (the suite's budget
# counts the install); pip does it when uv cannot.
UV     := $(BIN)/uv pip install --python $(BIN)/python -q

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip uv

# Re-install only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(UV) -e . || $(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(UV) -e ".[dev]" || $(PIP) install -q -e ".[dev]"
	@touch $@ $(VENV)/.installed

## assets: the dashboard's front-end package (plotly.js basic bundle, pinned in package-lock.json)
## from the npm registry; without npm the dashboard serves the plotly wheel's full bundle
assets:
	@if ! command -v npm >/dev/null; then \
		echo "npm not found: the dashboard will serve the plotly wheel's full plotly.js (slower first load)"; \
	elif [ ! node_modules/.package-lock.json -nt package-lock.json ]; then \
		npm ci --no-audit --no-fund --loglevel=error; fi

## demo: create the venv if missing, install, run the main job end to end on embedded defaults
demo: $(VENV)/.installed assets
	$(BIN)/fraudops demo

## dashboard: the governance dashboard over the simulated year `make demo` left (http://127.0.0.1:8090;
## more options with ARGS, e.g. `make dashboard ARGS="--port 8091"`)
dashboard: $(VENV)/.installed assets
	$(BIN)/fraudops dashboard --home fraudops-home/simulations/drift $(ARGS)

## chromium: Debian's chromium for the dashboard's browser test (Playwright drives it; no download)
chromium:
	@test -x /usr/bin/chromium || apt-get install -y -q chromium \
		|| (apt-get update -q && apt-get install -y -q chromium) \
		|| (sudo apt-get update -q && sudo apt-get install -y -q chromium)

## test: install the dev tools and run the whole suite (unit, integration, end-to-end), one
## worker per core, each test file whole in one worker (its module fixtures built once)
test: $(VENV)/.installed-dev chromium assets
	$(BIN)/pytest -m "" -p no:cacheprovider -n auto --dist loadfile --no-loadscope-reorder --durations=15

## unit: the fast unit tests only
unit: $(VENV)/.installed-dev
	$(BIN)/pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

## check: lint + types + the whole suite
check: lint typecheck test

## bench: the pipeline benchmark (results go to bench/RESULTS.md by hand)
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/pipeline.py

## bench-serve: fraudops serving vs a plain FastAPI app under wrk (results by hand too)
bench-serve: $(VENV)/.installed-dev
	@command -v wrk >/dev/null || (apt-get install -y -q wrk || sudo apt-get install -y -q wrk)
	$(BIN)/python bench/serve.py

clean:
	rm -rf fraudops-home .pytest_cache .mypy_cache .ruff_cache
