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

## demo: lint the bundled examples (findings for every failure mode), then trace one
demo: $(STAMP)
	-$(VENV)/bin/jaxdoctor lint examples/

## test: the whole suite
test: $(STAMP)
	$(PY) -m pytest -q -n auto

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
