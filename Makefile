# `make demo` and `make test` work from a fresh clone: they create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# jaxdoctor exits 1 when it finds something: that is the demo working; 2 or a crash fails it.
OK_IF_FOUND = || [ $$? -eq 1 ]

## demo: lint the bundled examples (findings for every failure mode A-E), then trace two of them
demo: $(STAMP)
	$(VENV)/bin/jaxdoctor lint examples/ $(OK_IF_FOUND)
	@echo; echo "== seed A, traced abstractly under vmap (W broadcast, batch 64) =="
	$(VENV)/bin/jaxdoctor trace examples/trace_cond_loop.py:step \
		--inputs "f32[1024,1024], f32[1024], bool[]" --vmap "None,0,0" --batch 64 $(OK_IF_FOUND)
	@echo; echo "== failure mode D, run under the doctor =="
	$(VENV)/bin/jaxdoctor trace examples/trace_eqx_dropout_scan.py:main $(OK_IF_FOUND)

## test: the whole suite
test: $(STAMP)
	$(PY) -m pytest -q -n auto

## bench: jaxdoctor vs the libcst parse floor and ruff/fixit/pylint/jaxlint on flax+equinox+optax
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
