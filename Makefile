# Swordfish: `make run` and `make test` are all a new clone needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install run serve test test-unit test-all bench loadtest loadtest-rotation soak synth lint clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml package.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	npm install --no-audit --no-fund --loglevel=error
	touch $(STAMP)

run: install
	$(PY) -m devstack.run

serve: install
	$(PY) -m devstack.serve

test: install
	$(VENV)/bin/pytest -q

test-unit: install
	# The processor and the API against in-memory fakes of their ports: no server, a few seconds.
	$(VENV)/bin/pytest -q tests/unit tests/test_architecture.py

test-all: install
	$(VENV)/bin/pytest -q -m ''

bench: install
	$(PY) scripts/bench_analysis.py

loadtest: install
	$(PY) -m loadtests.load_runner --profile standard

# 3 minutes at 10,000 emails/min while the database login rotates three times and the pepper once.
loadtest-rotation: install
	$(PY) -m loadtests.rotation_phase --seconds 180

soak: install
	$(PY) -m loadtests.load_runner --profile soak

synth: install
	npx cdk synth --quiet

lint: synth
	# W3005: CDK's own redundant DependsOn; W3010: availability zones pinned on purpose (offline synth).
	$(VENV)/bin/cfn-lint --ignore-checks W3005 W3010 -- cdk.out/*.template.json
	$(VENV)/bin/ruff check functions devstack stacks scripts loadtests tests
	# The import directions of docs/architecture.md (contracts in .importlinter).
	PYTHONPATH=functions:. $(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) node_modules cdk.out results .devstack
