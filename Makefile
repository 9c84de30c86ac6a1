# The two commands: `make run` and `make test`. Both set everything up on a fresh clone.
# `make check` is the inner loop: lint, types and the tests that start no server.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := contract runner task infra emulator local_stack batch_formula tools

# pytest-xdist workers for `make test` and `make check`: one more than the cores, since
# end-to-end tests wait on servers and retries as much as they compute.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) + 1)')
# `make live`: the outputs file of the stack to test (a deployed one: pulumi stack output
# --json), and where the JUnit report goes.
OUTPUTS ?=
JUNIT ?= live-tests.xml

.PHONY: help run test check live lint workflows typecheck pytest setup venv clean docs

help:
	@echo "make run    run the main job on the sample data (data/*.txt)"
	@echo "make test   lint, type-check, build the docs and run every test"
	@echo "make check  lint, type-check and the tests that start no server (about a minute)"
	@echo "make live OUTPUTS=FILE   the end-to-end tests against the stack FILE describes"
	@echo "make docs   build the documentation site (docs/, mkdocs.yml) into site/"
	@echo "make clean  stop the local stacks, then remove the virtual environment, node_modules and results"

setup: $(VENV)/.installed node_modules/.installed

# The Python half only (the runner, the Pulumi program and its policy pack): what a
# pipeline that talks to Azure needs; no Azurite.
venv: $(VENV)/.installed

# Recreated when pyproject.toml or the lock changes; needs Python 3.11 or newer. Every
# package comes from requirements.lock.txt, pinned with its hashes (the project itself,
# editable, adds none); regenerate the lock with the command in its first lines.
$(VENV)/.installed: pyproject.toml requirements.lock.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "error: Python 3.11 or newer is needed; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." \
		  "Run: make PYTHON=python3.12 ..." >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Azurite, the storage half of the local stack, pinned by package-lock.json.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null && node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' || \
		{ echo "error: Node.js 20 or newer with npm is needed (for Azurite)." >&2; exit 1; }
	@node -e 'process.exit(parseInt(process.versions.node) < 22 ? 1 : 0)' || \
		echo "warning: Azurite 3.37 declares Node.js 22 or newer; this is Node.js $$(node --version) (it runs, untested)" >&2
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(BIN)/python -m runner submit data/*.txt

lint: setup workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The pipelines: valid against GitHub's schemas, and zizmor's audits pass (offline).
workflows: $(VENV)/.installed
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --no-progress .github

typecheck: setup
	$(BIN)/mypy $(PACKAGES)

# The end-to-end tests that need only what a deployed stack has run as `make live` runs
# them: against a stack given by its outputs file, here a fresh local one, which the
# workers share as they would an Azure stack. The rest start local stacks of their own.
TEST_STACK := .local/test-stack
pytest: setup
	rm -rf $(TEST_STACK)
	trap 'RUNNER_LOCAL_DIR=$(TEST_STACK) $(BIN)/python -m runner local down > /dev/null' EXIT; \
	RUNNER_LOCAL_DIR=$(TEST_STACK) $(BIN)/python -m runner local up > /dev/null && \
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal --outputs=$(TEST_STACK)/outputs.json

test: lint typecheck docs pytest

# The documentation site, strict: a link to a page or an anchor that does not exist fails
# the build. tests/docs checks what the generator does not: every page is in the nav.
docs: $(VENV)/.installed
	$(BIN)/zensical build --strict --config-file mkdocs.yml

# The unit and in-process tests: no Azurite, no emulator process, no runner subprocess.
check: setup workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/python -m pytest -m "not e2e" -q -n $(WORKERS) --dist worksteal

# Only the Python half: against Azure, the tests that need the local stack are skipped.
live: venv
	@test -n "$(OUTPUTS)" || { echo "error: name the stack's outputs: make live OUTPUTS=outputs.json" >&2; exit 2; }
	$(BIN)/python -m pytest tests/e2e --outputs="$(OUTPUTS)" --junitxml "$(JUNIT)" -n $(WORKERS)

# The local stacks under .local first (the one `make run` started, $(TEST_STACK)): their
# servers would run on with their files gone. The standard library only: any python3 does.
clean:
	@test ! -d .local || $(PYTHON) -m local_stack down --under .local
	rm -rf $(VENV) node_modules results .local site .cache .mypy_cache .pytest_cache .ruff_cache .hypothesis
