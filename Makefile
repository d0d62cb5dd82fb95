# Recog: two commands do all the set-up on a fresh machine with Python 3.11+.
#   make run   creates .venv from uv.lock, starts Recog on the embedded default with a demo
#   make test  creates .venv from uv.lock with the test tools, runs every check and test
#   make lock  upgrades uv.lock on purpose (pyproject.toml keeps the ranges)
# Both install exactly what uv.lock names (uv sync --locked: a lock that no longer matches
# pyproject.toml is an error, not a silent re-resolution), so a release of a dependency on some
# other day cannot change what a fresh clone runs. See docs/adr/0006-locked-installs.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# make test runs the tests in this many processes (pytest-xdist; whole files per process);
# `make test TEST_WORKERS=0` runs them in one.
TEST_WORKERS ?= 2
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
# --compile-bytecode: the libraries' .pyc files are written once, at install. Python never
# writes them where PYTHONDONTWRITEBYTECODE is set (as on our CI machine), and without them every
# `recog` command compiled SQLAlchemy, FastAPI & co. again: 2.5 s to start instead of 1.1 s.
SYNC   := $(UV) sync --locked --inexact --compile-bytecode --python $(PYTHON)
# Recog's own packages, compiled before a run for the same reason (only what changed).
COMPILE := $(BIN)/python -m compileall -q -j 0 config models workflow web cli tasks tests

export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint typecheck format lock bench install install-test clean messages

$(UV): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check \
		--require-hashes -r requirements-tools.txt
	touch $(UV)

$(VENV)/.installed-run: uv.lock pyproject.toml | $(UV)
	scripts/system-packages run
	$(SYNC) --quiet
	touch $@

$(VENV)/.installed-test: uv.lock pyproject.toml | $(UV)
	scripts/system-packages test
	$(SYNC) --quiet --extra dev
	touch $@

$(VENV)/.installed-bench: uv.lock pyproject.toml | $(UV)
	scripts/system-packages run
	$(SYNC) --quiet --extra dev --extra bench
	touch $@

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed-run
	$(COMPILE) >/dev/null
	$(BIN)/recog up --demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(COMPILE) >/dev/null
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=20

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# The texts: re-extract the message ids from code and templates (babel.cfg) into the template
# and add new ones to (and drop unused ones from) both catalogues; then translate every new
# entry in workflow/locale/{de,en}/LC_MESSAGES/recog.po. tests/workflow/test_catalogues.py
# fails until each has words in both, and while this target would still change a file.
messages: $(VENV)/.installed-test
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/messages

lock: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/transitions.py

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache
