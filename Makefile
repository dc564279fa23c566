# Waihu — `make demo` runs the main job, `make test` runs every test. Both set up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
RASA := .venv-rasa/bin/rasa
export RASA_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup demo demo-text variants test test-rasa test-py lint bench chat clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## install Debian packages (as root), both venvs, train Rasa if needed
	@scripts/setup.sh

demo: setup ## sample campaigns with virtual customers through the whole bot, then the report
	$(PY) -m voice.cli demo

demo-text: setup ## the same sample campaigns as text calls (no SIP or audio; about a minute)
	$(PY) -m voice.cli demo --text

variants: setup ## paraphrased personas (examples/personas-variants) as calls, then a JSON summary; TEXT=1 for text calls
	$(PY) -m voice.cli simulate --summary --concurrency 6 $(if $(TEXT),--text) --personas \
		examples/personas-variants/{marketing,notification,survey,second_confirmation}

test: setup lint test-rasa test-py ## every test: lint, Rasa data, conversation tests, NLU gate, pytest

test-rasa: ## rasa data validate, conversation tests (e2e), held-out NLU accuracy gate
	@scripts/rasa_tests.sh

test-py: ## unit, integration and end-to-end tests (real Rasa, actions, SQLite, PostgreSQL)
	WAIHU_TEST_REQUIRE_PG=$${WAIHU_TEST_REQUIRE_PG:-1} $(PY) -m pytest

lint: ## ruff and mypy
	.venv/bin/ruff check bot actions voice waihu_rasa tests bench
	.venv/bin/mypy

bench: setup ## Rasa REST latency, 1M-row import, voice gateway latency/RTP/CPU (JSON)
	$(PY) bench/nlu.py
	$(PY) bench/import.py --rows 1000000
	$(PY) bench/voice.py --engines whisper,vosk --levels 1,10,auto
	$(PY) bench/voice.py --engines "" --rasa

chat: setup ## talk to the marketing bot in the terminal
	$(PY) -m voice.cli chat --campaign examples/campaigns/marketing.yml

clean: ## remove built models, results and local databases (keeps the venvs)
	rm -rf models results var .rasa
