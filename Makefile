# Two front doors: `make demo` and `make test`. Both build .venv from scratch when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := var/demo
SLUG   := ml-foundations-2027

.PHONY: demo test lint typecheck imports unit integration bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The demo installs the product the way a user would (a plain, non-editable install).
$(VENV)/.demo-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet .
	rm -f $(VENV)/.test-installed
	touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.demo-installed
	touch $@

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

test: lint typecheck imports
	$(BIN)/pytest

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

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
