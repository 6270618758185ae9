"""The one smoke run of the chapters, started at the beginning of the session so that it runs
beside the other tests (two cores); the tests that read it go last (conftest.py)."""
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from census.course import chapters, environment
from census.course.environment import CHECK_FIGURES
from census.processes import free_port

REPO = environment.root()
SMOKE_ROOT = "jobs/test-smoke"  # job dirs of the smoke run (gitignored jobs/)
FOLDER = REPO / "build" / "test-smoke"
FIGURES = FOLDER / "figures.jsonl"  # every figure the run showed, checked (census.plots)


def start(uci_dir, cache_dir):
    """Start the smoke run: nbval (--nbval-lax) executes each committed notebook with the smoke
    parameters injected (papermill, prepare_only), in a kernel over Unix sockets
    (tests/nbval_ipc.py), compares the cells tagged nbval-check-output with their committed
    outputs, and leaves each chapter's job dir under jobs/test-smoke/. It reads UCI's files:
    the committed outputs nbval compares with were made from them. Returns the process."""
    import papermill
    shutil.rmtree(FOLDER, ignore_errors=True)
    shutil.rmtree(REPO / SMOKE_ROOT, ignore_errors=True)
    FOLDER.mkdir(parents=True)
    for name in chapters.NAMES:
        params = chapters.parameters(name, smoke=True, job_root=REPO / SMOKE_ROOT)
        if name == "09_online_prediction":  # other tests may be serving on 8501 meanwhile
            params["PORT"] = free_port()
        papermill.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"),
                                   str(FOLDER / f"{name}.ipynb"), parameters=params,
                                   prepare_only=True, progress_bar=False)
    with open(FOLDER / "nbval.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p",
             "no:cacheprovider", "-p", "tests.nbval_ipc", "-q", "--rootdir", str(FOLDER),
             "--junitxml", str(FOLDER / "results.xml"), str(FOLDER)],
            cwd=REPO, env={**os.environ, "CENSUS_DATA_DIR": str(uci_dir),
                           "CENSUS_CACHE_DIR": str(cache_dir), CHECK_FIGURES: str(FIGURES)},
            stdout=log, stderr=subprocess.STDOUT)


def results(process):
    """Wait for the run; {notebook name: failure text or ""}, and "nbval": the log's tail if
    pytest failed."""
    process.wait(timeout=1800)
    failures = {name: "" for name in chapters.NAMES}
    for case in ElementTree.parse(FOLDER / "results.xml").iter("testcase"):
        name = Path(case.get("file") or case.get("classname", "")).stem.split(".")[-1]
        for problem in list(case.iter("failure")) + list(case.iter("error")):
            failures[name] = failures.get(name, "") + (problem.text or "")[-3000:]
    log = (FOLDER / "nbval.log").read_text()
    failures["nbval"] = "" if process.returncode == 0 else log[-3000:]
    return failures
