# make course — set up .venv on first use, then run the course end to end
# make test   — set up .venv on first use, then lint and run the test suite
# make test-fast — lint and the unit tests only (no training, notebooks, clusters or servers)
# make lab    — JupyterLab on this folder, for learners (nbgrader's extensions off)
# make lab-instructor — the same with nbgrader's Formgrader, Validate button and menus
# make exercises — regenerate exercises/ from solutions/
# make solution-outputs — run every solution in full, write its outputs back into solutions/
# make museum — the 2017 code's environment for the appendix (.venv-2017: Python 3.11,
#               TensorFlow 2.15, its Jupyter kernel); `make course` makes it when it can
# make rehearse — the course where learners are: Colab, an ordinary user, other Pythons,
#                 the 2017 code and Vertex AI's prebuilt prediction image's TensorFlow (2.15,
#                 `make museum`), the course's image as Vertex AI runs it (podman, if installed)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JOB_DIR ?= jobs/course

.PHONY: setup course test test-fast lint lab lab-instructor bench clean exercises rehearse museum

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "the pinned set (requirements.txt) needs Python 3.11, 3.12 or 3.13")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip uninstall -qq --yes census  # the course's name before it was census-course
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# The appendix's environment first, where a Python 3.11 is found (else the appendix is skipped).
course: setup
	-$(BIN)/census course museum $(if $(MUSEUM_PYTHON),--python $(MUSEUM_PYTHON))
	$(BIN)/census course run --job-root jobs --build-dir build/course

# The appendix's environment: a Python 3.11 venv with requirements-2017.txt (TensorFlow 2.15.1),
# the course's package without its dependencies, and the census-2017 kernel inside it.
# MUSEUM_PYTHON=/path/to/python3.11 names the interpreter (default: python3.11, or pyenv's).
museum: setup
	$(BIN)/census course museum $(if $(MUSEUM_PYTHON),--python $(MUSEUM_PYTHON))

# Re-run every chapter in full and write the scrubbed outputs back into notebooks/ (commit them).
.PHONY: outputs
outputs: setup
	$(BIN)/census course outputs --job-root jobs

test: lint
	$(BIN)/pytest

test-fast: lint
	$(BIN)/pytest -m "not slow"

# ruff with the rules of pyproject.toml (pre-commit runs the same before each commit)
lint: setup
	$(BIN)/ruff check .

# exercises/ from solutions/ (nbgrader's preprocessors); commit both.
exercises: setup
	$(BIN)/census exercises make

# Re-run every solution in full and write the scrubbed outputs back into solutions/ (commit
# them; exercises/ stays without outputs: `make exercises` clears them).
.PHONY: solution-outputs
solution-outputs: setup
	$(BIN)/census exercises outputs

lab: setup
	$(BIN)/census course lab $(if $(LAB_FLAGS),-- $(LAB_FLAGS))

lab-instructor: setup
	$(BIN)/census course lab --instructor $(if $(LAB_FLAGS),-- $(LAB_FLAGS))

# Colab (Python 3.13, Colab's packages), a non-root user, the pinned set on other Pythons,
# the 2017 code run and served, and TensorFlow 2.15 (Vertex AI's prebuilt prediction image)
# loading the course's exports (both in the environment `make museum` makes), the
# course's image built and run as Vertex AI runs it (podman, runc, mmdebstrap, uidmap; else skipped).
rehearse: setup
	$(BIN)/pytest rehearsals

bench: setup
	$(BIN)/python bench/train_quality.py --runs 3

clean:
	rm -rf $(VENV) .venv-2017 jobs build *.egg-info
