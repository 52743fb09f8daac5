# Two commands matter: `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint bench bench-premerge deps kube-env clean fuzz reliability

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

# Without the Kubernetes tests (they need the apiserver build; so does secrets-everywhere).
test-fast: $(VENV)/.dev deps
	$(BIN)/pytest -q --ignore=tests/kube --ignore=tests/reliability/test_secrets_everywhere.py

# The reliability and security suite (docs/reliability.md) alone, CI profile; `make test` runs it
# too. `fuzz` is the long profile of the suite fuzzer (>= 10,000 generated suites, nightly).
reliability: $(VENV)/.dev deps kube-env
	$(BIN)/pytest -q tests/reliability

fuzz: $(VENV)/.dev
	SMOKEGATE_RELIABILITY_PROFILE=long $(BIN)/pytest -q tests/reliability/test_fuzz_suites.py

bench: $(VENV)/.dev deps
	$(BIN)/python bench/run.py

# `smokegate validate` on 50 HelmReleases against the `helm template` loop (docs/premerge.md).
bench-premerge: $(VENV)/.dev kube-env
	$(BIN)/python bench/premerge.py

clean:
	rm -rf $(VENV) smokegate-demo-reports bench/out .pytest_cache .ruff_cache .import_linter_cache

# The container image, as an OCI layout under dist/oci/smokegate (daemonless, reproducible; needs
# root). tests/image builds it too, so `make test` covers it. See docs/image.md.
.PHONY: image
image:
	bash scripts/image/build.sh
