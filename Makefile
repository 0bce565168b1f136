# ebike-registry: every target works from a clean clone on Debian 12 (as root, or with sudo).
# The work is done by scripts/*.sh; see the comments at the top of each.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Passed through to the scripts: `make test PYTEST_ARGS='-x -k plate'`, `make bench BENCH_SCALE=small`.
export PYTEST_ARGS
export BENCH_SCALE
# `make backup BACKUP_TYPE=full`, `make restore TARGET_TIME='2026-12-06 09:30:00+08'` (README "Operations").
export BACKUP_TYPE
export TARGET_TIME

.PHONY: help setup run lint test bench clean backup restore drills

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-6s %s\n", $$1, $$2 }'

setup: ## apt packages, .venv, PostgreSQL+PostGIS, Redis, compilemessages, migrate, collectstatic
	@bash scripts/setup.sh

run: setup ## setup, then web :8000, Celery worker + beat and the gateway in the foreground
	@bash scripts/run.sh

lint: setup ## setup, then ruff, mypy, makemigrations --check, docker-compose config
	@bash scripts/lint.sh

test: lint ## setup, lint, then pytest (PYTEST_ARGS=...)
	@bash scripts/test.sh

bench: setup ## setup, then every bench/*.py (BENCH_SCALE=small|full)
	@bash scripts/bench.sh

clean: ## stop the project-local Redis; remove var/, staticfiles/ and the .venv stamp
	@bash scripts/clean.sh

backup: ## pgBackRest backup (BACKUP_TYPE=full|diff|incr) + files and keys; needs BACKUP_ENABLED=true
	@bash scripts/backup.sh

restore: ## point-in-time restore into a NEW cluster: make restore TARGET_TIME='2026-12-06 09:30:00+08'
	@bash scripts/restore.sh

drills: setup ## operations drills on throwaway clusters, five runs each, JSON figures (scripts/drills.sh)
	@bash scripts/drills.sh
