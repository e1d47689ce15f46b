# Two front doors: `make demo` and `make test`. Both build .venv from scratch when it is missing,
# installing the exact versions in requirements/*.lock (hash-checked, with uv, compiled to
# bytecode at install as pip does, so no `cohort` call compiles its imports); `make lock`
# refreshes the locks from pyproject.toml's lower bounds.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
LOCK   := $(UV) pip compile pyproject.toml --quiet --universal --python-version 3.11 \
          --generate-hashes --custom-compile-command "make lock"
DEMO   := var/demo
SLUG   := ml-foundations-2027

.PHONY: demo test lint typecheck imports unit integration bench clean lock messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	  -r requirements/uv.lock

# The demo installs the product the way a user would (a plain, non-editable install).
$(VENV)/.demo-installed: $(BIN)/python pyproject.toml requirements/demo.lock
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python --require-hashes \
	  -r requirements/demo.lock
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps \
	  --reinstall-package cohort-scheduler .
	rm -f $(VENV)/.test-installed
	touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml requirements/test.lock
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python --require-hashes \
	  -r requirements/test.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q scheduler jobs  # the CLI starts from bytecode, not source
	rm -f $(VENV)/.demo-installed
	touch $@

# Refresh the locks deliberately (newest releases within pyproject.toml's bounds), then run
# `make test` before committing them.
# The demo's lock is drawn from the test lock, so the demo runs exactly what the tests ran.
lock: $(BIN)/python
	$(LOCK) --upgrade --extra test -o requirements/test.lock
	$(LOCK) --constraint requirements/test.lock -o requirements/demo.lock
	$(UV) pip compile requirements/uv.in --quiet --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command "make lock" -o requirements/uv.lock

demo: $(VENV)/.demo-installed
	$(BIN)/cohort init $(DEMO) --force
	$(BIN)/cohort db upgrade
	$(BIN)/cohort cohort load $(DEMO)/cohort.toml
	$(BIN)/cohort roster import $(DEMO)/roster.csv --cohort $(SLUG)
	$(BIN)/cohort roster list --cohort $(SLUG) --limit 8
	$(BIN)/cohort plan --cohort $(SLUG) --publish
	$(BIN)/cohort deadlines --cohort $(SLUG)
	$(BIN)/cohort deadlines --cohort $(SLUG) --learner yuki.sato@example.org
	$(BIN)/cohort feeds url yuki.sato@example.org --cohort $(SLUG)
	@echo "Try the validator on a roster full of mistakes:"
	@$(BIN)/cohort roster validate examples/roster-with-mistakes.csv \
	  || echo "(exit status 1: the validator found the mistakes above and wrote nothing)"
	$(BIN)/cohort worker --once
	$(BIN)/cohort status
	@echo "Mail written to var/outbox/new/ (open any file in a mail client):"
	@ls var/outbox/new | head -3; echo "... $$(ls var/outbox/new | wc -l) messages"
	@echo "Dashboard: http://127.0.0.1:8000/login   admin token (keep it private):"
	@$(BIN)/cohort admin token
ifneq ($(DEMO_SERVE),0)
	@echo "Serving the dashboard and feeds on http://127.0.0.1:8000 with the worker beside it; Ctrl+C stops both."
	@$(BIN)/cohort worker & trap 'kill $$! 2>/dev/null' EXIT INT TERM; $(BIN)/cohort serve
endif

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy scheduler jobs

imports: $(VENV)/.test-installed
	$(BIN)/lint-imports

# Two processes (pytest-xdist; each its own throwaway PostgreSQL): most tests wait on real
# subprocesses, servers and databases, so the suite takes about half as long on two cores.
test: lint typecheck imports
	$(BIN)/pytest -n 2

unit: $(VENV)/.test-installed
	$(BIN)/pytest tests/unit

integration: $(VENV)/.test-installed
	$(BIN)/pytest tests/integration

bench: $(VENV)/.test-installed
	$(BIN)/python bench/roster_import.py
	$(BIN)/python bench/planner.py
	$(BIN)/python bench/deadlines.py
	$(BIN)/python bench/feeds_build.py
	$(BIN)/python bench/feeds.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/cli.py

# The learner's language (scheduler/outputs/i18n.py): extract every string marked for gettext
# in the code and the templates (babel.cfg) into messages.pot, update each shipped language's
# catalog from it (creating the ones missing) and compile them to the .mo files the product
# reads. Translators edit scheduler/locale/<language>/LC_MESSAGES/messages.po; run it again after
# changing a string or a translation, and commit the .pot, .po and .mo files.
LOCALE_DIR := scheduler/locale
SHIPPED     = $(shell $(BIN)/python -c "from scheduler.outputs.i18n import SHIPPED; print(*SHIPPED)")

messages: $(VENV)/.test-installed
	mkdir -p $(LOCALE_DIR)
	$(BIN)/pybabel extract -F babel.cfg --sort-output --add-comments=TRANSLATORS: \
	  --strip-comment-tags --project=cohort-scheduler --copyright-holder=cohort-scheduler \
	  -o $(LOCALE_DIR)/messages.pot .
	for language in $(SHIPPED); do \
	  $(BIN)/pybabel update -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -D messages \
	    -l $$language --init-missing --ignore-pot-creation-date || exit 1; \
	done
	$(BIN)/pybabel compile -d $(LOCALE_DIR) -D messages --statistics

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
