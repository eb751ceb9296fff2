# Tidegate: `make run` shows the main job, `make test` runs the tests (system packages included).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := skopeo umoci docker-registry busybox-static debootstrap apache2-utils \
                   ca-certificates curl dpkg golang-go rpm db5.3-util postgresql chromium gcc \
                   podman runc
DEMO_DIR := $(HOME)/.cache/tidegate/demo

.PHONY: setup run test system-deps lint typecheck check lock bench clean

$(BIN)/tidegate: pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(BIN)/tidegate ## create .venv idempotently

system-deps: ## install the system packages the tests and the demo use (Debian/Ubuntu, root or sudo)
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: setup system-deps ## start the console on the embedded default, with the demo image registered
	BIN=$(BIN) DEMO_DIR=$(DEMO_DIR) scripts/run-demo.sh

test: setup system-deps ## install everything the tests need and run them
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint typecheck test

lock: ## re-pin dependencies (needs uv)
	uv pip compile pyproject.toml -o requirements.lock --quiet
	uv pip compile pyproject.toml --group dev -o requirements-dev.lock --quiet

bench: setup system-deps
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
