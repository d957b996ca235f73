# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt
OFFLINE = HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[pretrained,serve,graph,test,routing,explain,tracking,tune,singlecell]'
	$(VENV)/bin/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/modalfuse demo

test: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
