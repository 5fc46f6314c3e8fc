# evsched — scheduled EV charging/discharging on distribution feeders.
# Every target bootstraps the local virtual environment (.venv) from python3 if needed.
# Paths are relative to this Makefile's folder, never absolute.

ROOT    := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
PYTHON3 ?= python3
VENV    := $(ROOT)/.venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
KERNEL  := evsched
PARAMS  ?= params/default.yaml

.DEFAULT_GOAL := help
.PHONY: help setup run test test-fast bench bench-year bench-paper sweep lab report lock png-support clean clean-results

help: ## list the targets with a one-line description
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@echo ">> creating .venv with $$($(PYTHON3) --version) and the pinned packages of requirements.lock"
	@test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	@echo ">> installing $$(grep -c '==' requirements.lock) pinned packages (about 2 minutes on a fresh machine; one line per package)"
	@bash -o pipefail -c '$(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements.lock 2>&1 \
	  | { grep --line-buffered -E "^(Collecting|Successfully|ERROR|error)" | cut -c1-110 || true; }' \
	  || (echo "evsched: pip could not install requirements.lock (its messages are above)"; exit 1)
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e $(ROOT)
	@$(PY) scripts/register_kernel.py
	@touch $(STAMP)
	@echo ">> environment ready (.venv, Jupyter kernel '$(KERNEL)')"

setup: $(STAMP) ## create .venv from requirements.lock and register the Jupyter kernel

run: $(STAMP) ## run the study with papermill on PARAMS (default params/default.yaml → results/, x.yaml → results/x/); ONLY=04 re-runs notebook 04
	@cd $(ROOT) && $(PY) -m evsched.run_study '$(PARAMS)' $(if $(strip $(ONLY)),--only $(ONLY))

NBVAL_NOTEBOOKS := notebooks/00_network.ipynb notebooks/02_tou.ipynb

test: $(STAMP) ## run ruff, the test suite (unit, reference-result and notebook tests) and nbval on the cheap notebooks 00, 02
	@cd $(ROOT) && $(VENV)/bin/ruff check evsched tests
	@cd $(ROOT) && $(PY) -m pytest
	@# nbval: the committed notebooks as JupyterLab runs them (no papermill, no batch flag: writes results/lab/)
	@cd $(ROOT) && $(PY) -m pytest -p no:cacheprovider --nbval-lax $(NBVAL_NOTEBOOKS)

test-fast: $(STAMP) ## run the tests without the slow ones (notebooks, large feeders)
	@cd $(ROOT) && $(PY) -m pytest -m "not slow"

bench: $(STAMP) ## benchmarks: model build/solve/re-solve (33..1000 buses, SimBench MV), per-EV vs envelope, sweeps, MPC/Monte Carlo → results/bench/
	@cd $(ROOT) && $(PY) -m evsched.bench
	@cd $(ROOT) && $(PY) -m evsched.bench_ev
	@cd $(ROOT) && $(PY) -m evsched.uncertainty.bench

bench-year: $(STAMP) ## time the full-year sweep (236 days × S0-S3) on 1 and 2 dask workers → results/bench/sweep_year.md (~15 min on 2 cores)
	@cd $(ROOT) && $(PY) -m evsched.bench --sweep params/sweeps/year.yaml --workers 1,2

bench-paper: $(STAMP) ## time the paper-calibration sweep (96 cases × 6 scenarios) on 1 and 2 dask workers → results/bench/sweep_paper.md (~20 min)
	@cd $(ROOT) && $(PY) -m evsched.bench --sweep params/sweeps/paper.yaml --workers 1,2

sweep: $(STAMP) ## parameter sweep on dask: SPEC=params/sweeps/x.yaml [WORKERS=2] [SCHEDULER=tcp://host:port] [OUT=dir] [RESUME=1] → results/sweeps/x/
	@test -n "$(strip $(SPEC))" || { echo "make sweep needs SPEC=params/sweeps/<name>.yaml (specs: $$(ls $(ROOT)/params/sweeps))"; exit 2; }
	@cd $(ROOT) && $(PY) -m evsched.cli sweep '$(SPEC)' $(if $(strip $(WORKERS)),--workers $(WORKERS)) $(if $(strip $(SCHEDULER)),--scheduler '$(SCHEDULER)') $(if $(strip $(OUT)),--out '$(OUT)') $(if $(strip $(RESUME)),--resume)

lab: $(STAMP) ## open JupyterLab on the notebooks (runs write to results/lab/); LAB_ARGS="--no-browser --port 8890" passes options
	@cd $(ROOT) && $(VENV)/bin/jupyter lab notebooks $$(test "$$(id -u)" = 0 && echo --allow-root) $(LAB_ARGS)

report: $(STAMP) ## static HTML report of a complete run (PARAMS as for make run) → results/[<name>/]report/index.html, offline
	@cd $(ROOT) && $(PY) -m evsched.book --params '$(PARAMS)'

png-support: ## install Debian's chromium so figures are also exported as PNG (needs root + apt)
	@if command -v chromium >/dev/null 2>&1; then echo "chromium already installed"; \
	elif command -v apt-get >/dev/null 2>&1; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null && echo "chromium installed"; \
	else echo "no apt-get here: PNG export will be skipped (HTML figures are still written)"; fi

lock: ## re-resolve the newest versions into requirements.lock (then update environment.yml to match)
	@rm -rf $(ROOT)/.lockenv && $(PYTHON3) -m venv $(ROOT)/.lockenv
	@$(ROOT)/.lockenv/bin/pip install --quiet setuptools wheel -e "$(ROOT)[dev]"
	@(echo "# Pinned environment for evsched (pip freeze of a fresh .venv, Python 3.11)."; \
	  echo "# Regenerate with \`make lock\`; environment.yml pins the same versions."; \
	  $(ROOT)/.lockenv/bin/pip freeze --all --exclude-editable | grep -v -e "^-e" -e "^pip==") > $(ROOT)/requirements.lock
	@rm -rf $(ROOT)/.lockenv
	@echo "requirements.lock rewritten; now align environment.yml (tests/test_environment.py checks it)"

clean-results: ## delete everything make run wrote under results/
	@find $(ROOT)/results -mindepth 1 ! -name README.md -exec rm -rf {} +

clean: clean-results ## delete .venv and caches as well
	@rm -rf $(VENV) $(ROOT)/.pytest_cache $(ROOT)/.hypothesis
