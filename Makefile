# Swordfish: `make run` and `make test` are all a new clone needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install lock run serve test test-unit test-all docs bench bench-search example-report fuzz loadtest loadtest-rotation loadtest-faults loadtest-knee soak drill synth lint deploy-check clean features fit eval

install: $(STAMP)

$(STAMP): requirements.lock requirements.txt requirements-dev.txt pyproject.toml package.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Run-time dependencies exactly as the Lambda layer ships them (hash-checked), then the dev tools
	# constrained to the same pins, so the tests run the versions that are deployed.
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements.lock
	# As constraints, the pins without their hashes (hashes there would demand hashes of every dev tool).
	sed -n 's/^\([A-Za-z0-9][^ ]*==[^ ]*\).*/\1/p' requirements.lock > $(VENV)/runtime-pins.txt
	$(PY) -m pip install -q -r requirements-dev.txt -c $(VENV)/runtime-pins.txt
	$(PY) -m pip install -q --no-deps -e .
	npm install --no-audit --no-fund --loglevel=error
	# Headless Chromium for the browser tests in tests/security/owasp (Debian packages, when missing).
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } || \
		echo "could not install chromium (needs root): the browser tests will fail until it is installed"
	# PgBouncer: the embedded stack and the tests reach PostgreSQL through it, as through RDS Proxy on AWS.
	command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer; } || \
		echo "could not install pgbouncer (needs root): the database tests and make run will fail until it is installed"
	touch $(STAMP)

# Re-pin requirements.lock after changing requirements.txt (needs the package index).
lock:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "pip-tools>=7.4,<8"
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile -q --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host -o requirements.lock requirements.txt

run: install
	$(PY) -m devstack.run

serve: install
	$(PY) -m devstack.serve $(ARGS)

# Three workers (pytest-xdist), each with its own PostgreSQL, Redis, moto and fauxqs; a test file stays on
# one worker, so its module fixtures start once. Most tests wait on servers and browsers, so three keep
# the two cores busier than two do. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 3
test: install
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

test-unit: install
	# The processor and the API against in-memory fakes of their ports: no server, a few seconds.
	$(VENV)/bin/pytest -q tests/unit tests/test_architecture.py

test-all: install
	$(VENV)/bin/pytest -q -m ''

# The operator documentation (mkdocs.yml, docs/) into site/; --strict: a broken link or a missing page fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# The example tenant report the docs quote (docs/examples/example-report.json, docs/reports.md): a
# throwaway PostgreSQL seeded as `make serve` seeds the demo tenants, with a fixed clock.
example-report: install
	$(PY) scripts/example_report.py
	$(PY) scripts/doc_figures.py --write >/dev/null

bench: install
	$(PY) scripts/bench_analysis.py

# Search and trace at 10 million verdicts across 500 tenants in a throwaway PostgreSQL (seeded
# server-side, a quarter of an hour or more on 2 cores); prints p50/p95 per kind of search. Not part of
# `make test`. KEEP=dir keeps the seeded database for another run.
bench-search: install
	$(PY) scripts/bench_search.py $(if $(KEEP),--keep $(KEEP))

fuzz: install
	$(PY) -m loadtests.pipeline_fuzz --messages 10000

# Detection: the development corpus (corpus/corpus.md). `make features` needs corpus/raw/ (built by
# scripts/corpus_build.py from public archives); `make fit` and `make eval` need only the committed
# corpus/features.jsonl.gz and run offline.
features: install
	$(PY) scripts/corpus_features.py

fit: install
	$(PY) scripts/fit_weights.py

# Four fits side by side (leave-one-source-out and pooled, with and without the receiver's opinions);
# writes the committed report corpus/eval.json and corpus/eval.md that the docs quote.
eval: install
	$(PY) scripts/eval_detection.py --commit

loadtest: install
	$(PY) -m loadtests.load_runner --profile standard

# 3 minutes at 10,000 emails/min while the database login rotates three times and the pepper once.
loadtest-rotation: install
	$(PY) -m loadtests.rotation_phase --seconds 180

soak: install
	$(PY) -m loadtests.load_runner --profile soak

loadtest-faults: install
	$(PY) -m loadtests.load_runner --profile faults

loadtest-knee: install
	$(PY) -m loadtests.load_runner --profile knee

# Disaster-recovery drill on a million verdicts: backup, keep writing, destroy, restore, verify, replay.
drill: install
	$(VENV)/bin/swordfish backup drill --verdicts 1000000 --write-seconds 30 --report-dir results

synth: install
	npx cdk synth --quiet

lint: synth
	# W3005: CDK's own redundant DependsOn; W3010: availability zones pinned on purpose (offline synth).
	$(VENV)/bin/cfn-lint --ignore-checks W3005 W3010 -- cdk.out/*.template.json
	$(VENV)/bin/ruff check functions devstack stacks scripts loadtests tests
	# The import directions of docs/architecture.md (contracts in .importlinter).
	PYTHONPATH=functions:. $(VENV)/bin/lint-imports --no-cache

# Deploy rehearsal, offline (a few minutes; not part of `make test`): synth with cdk-nag, cfn-lint, the
# service limits cfn-lint does not know, every function's AWS calls against its role, the database
# behind a transaction pooler, and the stacks created in moto's CloudFormation in dependency order.
# Prints PASS/FAIL per check and what would block a first deploy. ENV=dev for the dev environment.
deploy-check: install
	$(PY) scripts/deploy_check.py --env $(or $(ENV),prod)

clean:
	rm -rf $(VENV) node_modules cdk.out cdk.out.deploy-check results .devstack
