# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench constraints node redis coap

# Every package at the version constraints.txt pins (pyproject.toml holds the ranges).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -c constraints.txt
	touch $(STAMP)

# constraints.txt anew, after a change of pyproject.toml's ranges or extras: the versions of
# this environment, with what the test and bench extras need added or changed.
constraints:
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	{ echo "# The versions tested, pinned for CI and the benchmarks (make constraints writes this file)."; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt

run: $(STAMP)
	$(BIN)/tuplespace serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples scripts
	$(BIN)/ruff format --check src tests bench examples scripts
	$(BIN)/mypy

# The JavaScript binding's tests and the wire-format cross-check need Node.js and npm.
node:
	@(command -v node && command -v npm) >/dev/null || (apt-get update -q && apt-get install -y -q nodejs npm)

# Spaces kept in Redis are tested against a real redis-server.
redis:
	@command -v redis-server >/dev/null || (apt-get update -q && apt-get install -y -q redis-server)

# Nodes are checked against an independent CoAP client, libcoap's coap-client-notls.
coap:
	@command -v coap-client-notls >/dev/null || (apt-get update -q && apt-get install -y -q libcoap3-bin)

test: lint node redis coap
	$(BIN)/pytest

# The benchmarks, each beside its references; figures and commands in bench/RESULTS.md.
bench: $(STAMP)
	@(command -v redis-server && command -v ruby) >/dev/null || (apt-get update -q && apt-get install -y -q redis-server ruby)
	$(BIN)/pip install --quiet -e '.[test,bench]' -c constraints.txt
	$(BIN)/python bench/run_all.py
	$(BIN)/python bench/bench_coordination.py
	$(BIN)/python bench/bench_durable.py
	$(BIN)/python bench/bench_records.py
	$(BIN)/python bench/bench_active.py
	$(BIN)/python bench/bench_server.py
