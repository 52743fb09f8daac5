# Two commands matter: `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench bench-premerge bench-serve deps kube-env clean fuzz reliability

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Runtime install only: the demo needs no test tooling, no database drivers.
$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[speed]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[all,dev]'
	touch $@ $(VENV)/.base

demo: $(VENV)/.base
	$(BIN)/smokegate demo

deps:
	bash scripts/install-debian-deps.sh
	bash scripts/install-test-tools.sh

kube-env:
	bash scripts/kube/ensure.sh

# ruff, mypy on src/ (pyproject.toml [tool.mypy]), then the house rules: import layers and
# contracts (pyproject.toml [tool.importlinter]), and the ast-based graph check (no circles,
# nothing imports smokegate.cli from below).
lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench scripts ci
	$(BIN)/ruff format --check src tests bench scripts ci
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache pyproject.toml
	$(BIN)/python scripts/import_graph.py --quiet

# Screenshots and other evidence tests leave for people to look at (e.g. the dashboard).
export SMOKEGATE_ARTIFACTS_DIR ?= $(CURDIR)/artifacts

test: $(VENV)/.dev deps kube-env lint
	$(BIN)/pytest -q

# Without the Kubernetes tests (they need the apiserver build; so do secrets-everywhere and the
# outage tests).
test-fast: $(VENV)/.dev deps
	$(BIN)/pytest -q --ignore=tests/kube --ignore=tests/reliability/test_secrets_everywhere.py \
		--ignore=tests/reliability/test_outages.py

# The reliability and security suite (docs/reliability.md) alone, CI profile; `make test` runs it
# too. `fuzz` is the long profile (nightly): the suite fuzzer with >= 10,000 generated suites and
# the 10-minute soak of scheduled runs.
reliability: $(VENV)/.dev deps kube-env
	$(BIN)/pytest -q tests/reliability

fuzz: $(VENV)/.dev
	SMOKEGATE_RELIABILITY_PROFILE=long $(BIN)/pytest -q tests/reliability/test_fuzz_suites.py \
		tests/reliability/test_load_soak.py

bench: $(VENV)/.dev deps
	$(BIN)/python bench/run.py

# `smokegate validate` on 50 HelmReleases against the `helm template` loop (docs/premerge.md).
bench-premerge: $(VENV)/.dev kube-env
	$(BIN)/python bench/premerge.py

# `smokegate serve` with 500 HelmReleases on the test apiserver and 5,000 checks a minute for
# 3 minutes: RSS, CPU, Ready→first-check latency, store growth (bench/serve_scale.py; pass
# e.g. BENCH_SERVE_ARGS='--duration 30' for a short run).
bench-serve: $(VENV)/.dev deps kube-env
	$(BIN)/python bench/serve_scale.py $(BENCH_SERVE_ARGS)

clean:
	rm -rf $(VENV) smokegate-demo-reports bench/out .pytest_cache .ruff_cache .import_linter_cache

# The container image, as an OCI layout under dist/oci/smokegate (daemonless, reproducible; needs
# root). tests/image builds it too, so `make test` covers it. See docs/image.md.
.PHONY: image
image:
	bash scripts/image/build.sh
