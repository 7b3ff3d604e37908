# make run: install and start Traffic; make test: install what tests need and run them all.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_WORKERS ?= 3
# Workers running the test files side by side: most tests wait on polls, links and servers
# rather than on a CPU, so three share two cores well and keep the suite under 10 minutes.
STAMP := $(VENV)/.installed-$(shell cat Makefile pyproject.toml requirements.txt requirements-dev.txt | md5sum | cut -c1-12)
JS_STAMP := js/node_modules/.installed-$(shell cat js/package.json js/package-lock.json | md5sum | cut -c1-12)

run: export TRAFFIC_STORE_URL ?= sqlite://$(CURDIR)/var/traffic.db
run: export SUPERVISOR_STATE_DIR ?= $(CURDIR)/var

.PHONY: install run test bench lint docs system-deps test-deps pin clean install-systemd

# Debian packages: $(1) is a list of "command:package" pairs; missing ones are installed as root.
define apt_need
	@missing=""; for pair in $(1); do \
		command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "Please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi
endef

$(STAMP): Makefile pyproject.toml requirements.txt requirements-dev.txt
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps \
		--config-settings editable_mode=compat -e .
	rm -f $(VENV)/.installed-* && touch $@

# Highcharts and the other front-end packages, exactly as js/package-lock.json pins them.
$(JS_STAMP): js/package.json js/package-lock.json
	@$(MAKE) --no-print-directory system-deps
	cd js && npm ci --no-audit --no-fund --loglevel=error
	rm -f js/node_modules/.installed-* && touch $@

# What running Traffic needs: Python's venv, npm for the dashboard's packages.
system-deps:
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
		{ [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq python3-venv; } || \
		{ echo "Please install python3-venv"; exit 1; }
	$(call apt_need,npm:npm ip:iproute2)

# What the tests need besides: nginx in front of gunicorn, Chromium for the browser tests,
# systemd-analyze to verify the units in util/systemd.
test-deps:
	$(call apt_need,nginx:nginx-light chromium:chromium systemd-analyze:systemd)

# Bytecode for every module, kept up to date: a service running as a user who may not write
# here would otherwise compile each module again at every start.
install: $(STAMP) $(JS_STAMP)
	@$(BIN)/python -m compileall -q -j 0 traffic collector web cli >/dev/null

run: install
	@mkdir -p "$$SUPERVISOR_STATE_DIR/log"
	@$(BIN)/traffic check-config >/dev/null
	@echo "Traffic is starting. Dashboard: http://$$($(BIN)/python -c 'from traffic.config import load_config; print(load_config().web.bind)')/"
	@echo "Logs: $$SUPERVISOR_STATE_DIR/log/. Press Ctrl-C to stop."
	@exec $(BIN)/supervisord -c supervisor/supervisord.conf

test: install test-deps
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory docs
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: install test-deps
	$(call apt_need,wrk:wrk)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

docs: $(STAMP)
	$(BIN)/sphinx-build -q -W -b html doc doc/_build/html

# The two systemd services (doc/install.rst, "Running under systemd"), as root: the "traffic"
# user, the units with this checkout's path, enabled and started when systemd runs the box.
# AS_ROOT=yes adds drop-ins that run both as root (keeper commands such as pon need it); without
# it they are removed. DESTDIR=folder writes everything under that folder and starts nothing.
SYSTEMD_UNITS := traffic-collector.service traffic-web.service
UNIT_DIR = $(DESTDIR)/etc/systemd/system
install-systemd:
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" != 0 ]; then \
		echo "install-systemd: run it as root: sudo make install-systemd"; exit 1; fi
	install -D -m 644 util/systemd/traffic.sysusers $(DESTDIR)/etc/sysusers.d/traffic.conf
	install -d $(UNIT_DIR)
	systemd-sysusers $(if $(DESTDIR),--root=$(abspath $(DESTDIR))) \
		$(DESTDIR)/etc/sysusers.d/traffic.conf
	@for unit in $(SYSTEMD_UNITS); do \
		name=$${unit%.service}; dropin=$(UNIT_DIR)/$$unit.d/as-root.conf; \
		sed 's#/opt/traffic#$(CURDIR)#g' util/systemd/$$unit > $(UNIT_DIR)/$$unit || exit 1; \
		chmod 644 $(UNIT_DIR)/$$unit; echo "installed $(UNIT_DIR)/$$unit"; \
		if [ "$(AS_ROOT)" = yes ]; then \
			install -D -m 644 util/systemd/as-root-$${name#traffic-}.conf $$dropin || exit 1; \
			echo "installed $$dropin"; \
		elif [ -e $$dropin ]; then rm $$dropin && echo "removed $$dropin"; fi; \
	done
	@if [ -n "$(DESTDIR)" ]; then exit 0; \
	elif [ "$$(cat /proc/1/comm)" != systemd ]; then \
		echo "systemd is not running this system (PID 1 is $$(cat /proc/1/comm)); once it does:"; \
		echo "  systemctl daemon-reload && systemctl enable --now $(SYSTEMD_UNITS)"; \
	elif [ -e /etc/supervisor/conf.d/traffic.conf ]; then \
		systemctl daemon-reload; \
		echo "supervisord still runs Traffic (/etc/supervisor/conf.d/traffic.conf): stop it first"; \
		echo "(doc/install.rst, \"Switching from supervisor\"), then:"; \
		echo "  systemctl enable --now $(SYSTEMD_UNITS)"; \
	else \
		systemctl daemon-reload && systemctl enable --now $(SYSTEMD_UNITS) && \
		echo "started; after an update, apply changed units: systemctl restart $(SYSTEMD_UNITS)"; \
	fi

# Print the installed versions, to re-pin requirements*.txt after changing pyproject.toml.
pin: $(STAMP)
	$(BIN)/pip freeze --exclude-editable | sort -f

clean:
	rm -rf $(VENV) var doc/_build js/node_modules test-artifacts
