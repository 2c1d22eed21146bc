VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 6333
STORAGE ?= ./storage

.PHONY: serve test test-slow test-clients test-deps lint install bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# System packages only the tests need (we are root; apt-get installs what is missing).
test-deps: install
	@# libfuse 3 for the power-loss simulator (tests/powerloss_fs.py); without it those tests skip.
	@[ ! -e /dev/fuse ] || command -v fusermount3 >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 >/dev/null || \
		(apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 >/dev/null) || \
		echo "fuse3 could not be installed: the power-loss tests will be skipped"
	@# Debian's chromium for the dashboard's browser tests (tests/test_dashboard.py, driven by
	@# Playwright with executable_path); without it those tests fail.
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
		(apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null) || \
		echo "chromium could not be installed: the dashboard's browser tests will fail"
	@# Debian's etcd for the cluster tests (tests/test_cluster.py); without it they fail.
	@command -v etcd >/dev/null || ! command -v apt-get >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >/dev/null || \
		(apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server >/dev/null) || \
		echo "etcd-server could not be installed: the cluster tests will fail"

serve: install
	$(VENV)/bin/tessera serve --port $(PORT) --storage $(STORAGE)

lint: install
	$(VENV)/bin/ruff format --check tessera tests bench
	$(VENV)/bin/ruff check tessera tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint test-deps
	$(PY) -m pytest -q -x -m "not slow" --durations=30

test-slow: test-deps
	$(PY) -m pytest -q -m slow

# The official Rust, Go and Java clients against a server of their own (clients/README.md).
# Needs cargo, go, java and mvn; caches everything under clients/.cache (ignored).
test-clients: install
	bash clients/run.sh

bench: install
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) storage
