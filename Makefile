# The project's interface: README names the two commands that matter most.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SAM_ENV := .tools/sam
SAM := $(SAM_ENV)/bin/sam
CHECKOV_ENV := .tools/checkov
CHECKOV := $(CHECKOV_ENV)/bin/checkov
# The functions run on python3.13; pyenv keeps it under that name.
PYTHON313 ?= $(shell PYENV_VERSION=3.13.0 python3.13 -c 'import sys; print(sys.executable)' \
	2>/dev/null || command -v python3.13)
ENV ?= default
# The fuzzers and the fault campaign make up addresses: they run in a network
# namespace with loopback only (a user namespace too, where not run as root).
LOOPBACK_ONLY := unshare $(if $(filter 0,$(shell id -u)),-n,-rn)
FUNCTION ?= ApiFunction
EVENT ?= events/api-invoke-csv.json
export AWS_EC2_METADATA_DISABLED := true
export SAM_CLI_TELEMETRY := 0
# checkov scans offline: no version check, no policy download.
export CKV_SKIP_PACKAGE_UPDATE_CHECK := true

.PHONY: help setup run invoke test test-unit fuzz bench chaos validate checkov lint fmt build deploy clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: functions/requirements.txt requirements-dev.txt
	@test -n "$(PYTHON313)" || { echo "python3.13 is needed (pyenv install 3.13.0)"; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(SAM_ENV)/.installed: requirements-sam.txt
	$(PYTHON313) -m venv $(SAM_ENV)
	$(SAM_ENV)/bin/pip install --quiet --upgrade pip
	$(SAM_ENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

# Its own environment: checkov's pins clash with the SAM CLI's and the functions'.
$(CHECKOV_ENV)/.installed: requirements-checkov.txt
	@test -n "$(PYTHON313)" || { echo "python3.13 is needed (pyenv install 3.13.0)"; exit 1; }
	$(PYTHON313) -m venv $(CHECKOV_ENV)
	$(CHECKOV_ENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_ENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

setup: $(VENV)/.installed  ## Create the development environment

run: setup  ## Start the whole offline stack and serve until interrupted
	$(PY) -m offline.stack $(if $(PARAMS),--parameter-overrides $(PARAMS))

invoke: setup  ## Run FUNCTION on EVENT against the running offline stack
	$(PY) -m offline.invoke $(FUNCTION) $(EVENT) $(if $(PARAMS),--parameter-overrides $(PARAMS))

test: setup  ## Run every test (unit, integration, end to end)
	$(PY) -m pytest

test-unit: setup  ## Run the tests that need no network
	$(PY) -m pytest tests/unit

fuzz: setup  ## Fuzz the API from its OpenAPI document and the queue and results handlers
	$(LOOPBACK_ONLY) sh -c 'ip link set lo up && exec $(PY) -m pytest fuzz -p no:cacheprovider'

bench: setup  ## Measure the gateway against bare boto3 and print ratios
	$(PY) -m bench

chaos: setup  ## Fault campaign: 1,000 requests per path under injected faults
	@$(LOOPBACK_ONLY) true 2>/dev/null || { echo "make chaos runs in a loopback-only" \
		"network namespace, but '$(LOOPBACK_ONLY)' is not permitted here (root, or" \
		"unprivileged user namespaces, are needed)" >&2; exit 2; }
	$(LOOPBACK_ONLY) sh -c 'ip link set lo up && exec $(PY) -m offline.chaos $(CHAOS_ARGS)'

lint: setup  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: setup  ## Format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: lint checkov $(SAM_ENV)/.installed  ## Lint, type-check, scan and validate the template
	$(SAM) validate --lint --template template.yaml

checkov: $(CHECKOV_ENV)/.installed  ## Scan the template with checkov (fails on any failed check)
	$(CHECKOV) --file template.yaml --framework cloudformation --skip-download --compact --quiet

build: $(SAM_ENV)/.installed  ## sam build (arm64 wheels, no Docker)
	PATH="$(dir $(PYTHON313)):$$PATH" $(SAM) build --template template.yaml

deploy: build  ## sam build, then sam deploy with ENV from samconfig.toml
	$(SAM) deploy --config-env $(ENV)

clean:  ## Remove build output and caches
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
