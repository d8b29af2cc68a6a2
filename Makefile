# The two commands a newcomer runs: `make demo` and `make test`.
# Both create or update the virtualenv they need and install what is missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
WORLD  := data/world
LUIGI  := $(VENV)/bin/luigi --module pipeline.tasks

.PHONY: demo test lint world bench bench-api-import bench-quick bench-tools clean-work clean system-deps venv venv-test venv-bench luigid

# The demo adds data/demo.cfg to luigi.cfg (the sample world's file_hashes dump).
demo: export LUIGI_CONFIG_PATH = data/demo.cfg
demo: venv world
	$(LUIGI) Backfill --local-scheduler
	@echo
	@echo "== step counts (python -m pipeline status) =="
	@$(PY) -m pipeline status
	@echo
	@echo "== the sample's status histogram, each shard's counter, the import's counter =="
	@$(PY) -m pipeline counter IngestSampleResults
	@$(PY) -m pipeline counter IngestShard
	@$(PY) -m pipeline counter ImportFileMeta
	@echo
	@echo "== the run report (python -m pipeline path BackfillReport) =="
	@$(PY) -m pipeline path BackfillReport | sed 's/report\.json$$/report.html/'
	@echo
	@echo "== messages each sink stored (file sinks under data/work/sinks/ when no [kafka] hosts) =="
	@$(PY) -m pipeline messages

test: venv-test world
	$(VENV)/bin/ruff check pipeline tests bench data
	$(PY) tests/services.py ensure-pywb
	$(PY) tests/browser.py ensure
	$(VENV)/bin/pytest -q

lint: venv-test
	$(VENV)/bin/ruff check pipeline tests bench data

world: venv $(WORLD)/summary.json

$(WORLD)/summary.json: data/generate_world.py $(wildcard data/worldgen/*.py) | venv
	$(PY) data/generate_world.py --out $(WORLD)

# The central scheduler for workers on this and other hosts (foreground; Ctrl-C stops it and
# saves its state). Visualiser: http://127.0.0.1:8082/static/visualiser/index.html
LUIGID_PORT ?= 8082
LUIGID_ADDRESS ?= 127.0.0.1
LUIGID_DIR ?= data/luigid
luigid: venv
	mkdir -p $(LUIGID_DIR)/logs
	$(VENV)/bin/luigid --address $(LUIGID_ADDRESS) --port $(LUIGID_PORT) \
	  --logdir $(LUIGID_DIR)/logs --state-path $(LUIGID_DIR)/state.pickle

# Each step against its shell one-liner on a runbook-scale world generated once under
# data/bench/ (bench/worldgen_scale.py); table printed, JSON in bench/results/<size>.json.
bench: venv-bench bench-tools
	$(PY) bench/run.py --size full

# The import through the fatcat stand-in (10 ms per call) with 1, 2, 4 and 8 streams.
bench-api-import: venv-bench
	$(PY) bench/api_import.py

# Smaller world, fewer runs: under 5 minutes.
bench-quick: venv-bench bench-tools
	$(PY) bench/run.py --size quick

# The anchors' tools (pigz, ripgrep, jq) and pywb for the ingest over HTTP.
bench-tools:
	@if ! command -v pigz >/dev/null || ! command -v rg >/dev/null || ! command -v jq >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing pigz ripgrep jq with apt-get ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pigz ripgrep jq >/dev/null; \
	  else \
	    echo "bench: install pigz, ripgrep and jq (apt-get install pigz ripgrep jq) first"; exit 1; \
	  fi; \
	fi
	$(PY) tests/services.py ensure-pywb >/dev/null

# libmagic is the one system library the pipeline needs (python-magic loads it).
system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1'; then \
	  echo "libmagic1 is missing: python-magic needs it to tell PDFs from HTML."; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libmagic1 with apt-get ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmagic1 >/dev/null; \
	  else \
	    echo "Install it first (Debian/Ubuntu: sudo apt-get install libmagic1), then rerun make."; exit 1; \
	  fi; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the package metadata changes; the stamp files record the last install.
$(VENV)/.installed: setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import pipeline, luigi, warcio, magic" && touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import pytest, surt, hypothesis" && touch $@

$(VENV)/.installed-bench: setup.cfg pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[bench]' 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import pigz_python" && touch $@

venv: system-deps $(VENV)/.installed
venv-test: system-deps $(VENV)/.installed-test
venv-bench: system-deps $(VENV)/.installed-bench


clean-work:
	rm -rf data/work

clean: clean-work
	rm -rf $(WORLD) $(VENV) .venv-pywb
