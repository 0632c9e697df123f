# The two commands the README promises: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cosearch run examples/quickstart.toml

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --no-error-summary . --exclude '((^\.venv|^tests|^benchmarks|^build)/|^__main__\.py$$)'

test: lint
	$(PY) -m pytest

# Every benchmark, then benchmarks/results/REPORT.md (not part of `make test`; hours at full
# size, minutes per benchmark with `make bench QUICK=1`).
bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) build *.egg-info
