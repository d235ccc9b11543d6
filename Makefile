.PHONY: demo test lint bench

demo:
	@scripts/bootstrap
	@.venv/bin/python -m demo

test:
	@scripts/bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/python -m pytest -q

lint:
	@scripts/bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

bench:
	@JADA_BENCH=1 scripts/bootstrap
	@for b in bench/*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done
