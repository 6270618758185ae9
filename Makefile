# make course — set up .venv on first use, then run the course end to end
# make test   — set up .venv on first use, then run the test suite
# make lab    — JupyterLab on this folder
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JOB_DIR ?= jobs/course

.PHONY: setup course test lab bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "the course needs Python >= 3.10"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

course: setup
	$(BIN)/census data
	$(BIN)/census train --job-dir $(JOB_DIR)
	$(BIN)/saved_model_cli show --dir $$(ls -d $(JOB_DIR)/export/census/* | tail -n 1) --tag_set serve --signature_def predict
	$(BIN)/census predict --model-dir $(JOB_DIR)/export/census --json-instances test.json

test: setup
	$(BIN)/pytest

lab: setup
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir .

bench: setup
	$(BIN)/python bench/train_quality.py

clean:
	rm -rf $(VENV) jobs build *.egg-info
