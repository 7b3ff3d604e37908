# make run: install and start Traffic; make test: install what tests need and run them all.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat Makefile pyproject.toml requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

run: export TRAFFIC_STORE_URL ?= sqlite://$(CURDIR)/var/traffic.db
run: export SUPERVISOR_STATE_DIR ?= $(CURDIR)/var

.PHONY: install run test bench lint docs system-deps pin clean

$(STAMP): Makefile pyproject.toml requirements.txt requirements-dev.txt
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps \
		--config-settings editable_mode=compat -e .
	rm -f $(VENV)/.installed-* && touch $@

# Debian packages the project needs: venv support for Python, iproute2 for the namespace tests.
system-deps:
	@missing=""; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
		else echo "Please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

# Install only: .venv with Traffic and its pinned dependencies (what a production box needs).
install: $(STAMP)

run: $(STAMP)
	@mkdir -p "$$SUPERVISOR_STATE_DIR/log"
	@$(BIN)/traffic check-config >/dev/null
	@echo "Traffic is starting. Dashboard: http://$$($(BIN)/python -c 'from traffic.config import load_config; print(load_config().web.bind)')/api/v1/usage"
	@echo "Logs: $$SUPERVISOR_STATE_DIR/log/. Press Ctrl-C to stop."
	@exec $(BIN)/supervisord -c supervisor/supervisord.conf

test: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory docs
	@$(BIN)/pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

docs: $(STAMP)
	$(BIN)/sphinx-build -q -W -b html doc doc/_build/html

# Re-pin requirements*.txt after changing the ranges in pyproject.toml.
pin: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sort -f > /tmp/traffic-freeze.txt && cat /tmp/traffic-freeze.txt

clean:
	rm -rf $(VENV) var doc/_build
