# One entry point for people and CI: `make demo` runs the box locally, `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Debian packages the tests drive for real: ptys (socat), the browser, udev/umockdev, a booted Debian
# (debootstrap, nspawn) on its own network with an apt proxy (apt-cacher-ng).
APT_PACKAGES := socat chromium chromium-driver umockdev udev debootstrap systemd-container iproute2 openssh-client apt-cacher-ng

.PHONY: help venv system-deps web-assets test test-fast demo bench docs docs-serve lint clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed  ## Create .venv and install the project with its dev tools.

system-deps:  ## Install the Debian packages the test suite needs (root only; skipped when present).
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "apt-get install $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages (run as root to install): $$missing" >&2; fi; \
	fi

web-assets:  ## Install the dashboard's front-end packages (npm ci) and copy them into web/static.
	@if [ -f web/frontend/package-lock.json ]; then cd web/frontend && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build; fi

test: system-deps venv web-assets  ## Install everything needed, then run the whole test suite.
	$(VENV)/bin/pytest

demo: venv web-assets  ## Run a simulated monitor and every service locally (PORT=N RATE=HZ CHANNELS=N); Ctrl-C stops it all.
	$(PY) -m devtools.demo $(if $(PORT),--web-port $(PORT)) $(if $(RATE),--rate $(RATE)) $(if $(CHANNELS),--channels $(CHANNELS))

bench: venv web-assets  ## Run the benchmarks and print same-run ratios.
	$(PY) -m bench

docs: venv  ## Build the manual (docs/) into site/; a broken link or anchor fails the build.
	$(VENV)/bin/mkdocs build --strict

docs-serve: venv  ## Preview the manual at http://127.0.0.1:8001/, rebuilt on every save (warnings shown, not fatal).
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

lint:  ## Static checks.
	$(VENV)/bin/ruff check .

clean:  ## Remove the venv and caches.
	rm -rf $(VENV) .pytest_cache build site *.egg-info
