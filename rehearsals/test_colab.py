"""Colab, rehearsed: Python 3.13 with Colab's own package versions (colab-runtime-2026-08.txt,
read off Colab's public image list) and a stand-in `google.colab` module. Every chapter the
chapter list marks as Colab-ready runs in smoke mode, its setup cell included (it clones the
course from CENSUS_COURSE_REPO and installs what the chapter lacks), in a folder outside any
checkout, through a kernel of that venv — all inside a loopback-only network namespace, with
pip reading a local wheelhouse. Chapter 7 runs as on a Colab runtime that cannot make a
network namespace. Afterwards, every preinstalled package still has its version."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from census import DISTRIBUTION
from census.course import chapters, colab as colab_setup, environment
from census.distribute import namespace
from conftest import (
    BUILD,
    REPO,
    course_printed_path,
    freeze,
    printed,
    pyenv_python,
    run,
    venv,
    versions,
)

RUNTIME = REPO / "rehearsals" / "colab-runtime-2026-08.txt"
KERNEL = "colab-rehearsal"
READY = [c.name for c in chapters.CHAPTERS if c.colab_ready]
# The list names what the course imports; pip gives the rest of a new venv today's newest
# versions, which Colab may not have. python-dateutil 4 is one: Colab keeps 2.x, which its
# preinstalled google-cloud-bigquery (and so google-cloud-aiplatform) requires.
AS_ON_COLAB = ["python-dateutil==2.9.0.post0"]


def colab_venv_finish(folder):
    """stand-in google.colab module, and a kernelspec for the venv"""
    [site] = folder.glob("lib/python3*/site-packages")
    (site / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (site / "google" / "colab" / "__init__.py").write_text(
        '"""A stand-in for Colab\'s own module: the course only asks whether it exists."""\n')
    run([folder / "bin" / "python", "-m", "ipykernel", "install", "--prefix",
         folder / "jupyter", "--name", KERNEL, "--display-name", "Colab rehearsal"])


@pytest.fixture(scope="module")
def colab(repo_snapshot, raw_dir, tmp_path_factory):
    python = pyenv_python("3.13")
    if python is None:
        pytest.skip("no Python 3.13 here (pyenv): the Colab rehearsal needs Colab's Python")
    folder = venv("colab-py313", python, [["--upgrade", "pip"], ["-r", RUNTIME], AS_ON_COLAB],
                  after=colab_venv_finish)
    pristine = (folder / ".ready").read_text()
    added = set(versions(freeze(folder))) - set(versions(pristine))
    if added:  # an earlier local run installed the course: back to Colab as it comes
        run([folder / "bin" / "python", "-m", "pip", "uninstall", "--quiet", "-y", *added])
    wheels = wheelhouse(folder, repo_snapshot)
    content = tmp_path_factory.mktemp("content")  # Colab's working folder, outside any checkout
    private = namespace.Namespace()
    env = dict(os.environ, JUPYTER_PATH=str(folder / "jupyter" / "share" / "jupyter"),
               CENSUS_COURSE_REPO=repo_snapshot.as_uri(), CENSUS_DATA_DIR=str(raw_dir),
               CENSUS_CACHE_DIR=str(tmp_path_factory.mktemp("census-cache")),
               PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop(environment.ROOT_VARIABLE, None)
    out = BUILD / "colab"
    out.mkdir(parents=True, exist_ok=True)
    yield {"venv": folder, "pristine": pristine, "content": content, "env": env, "out": out,
           "namespace": private}
    private.stop()


def wheelhouse(folder, snapshot):
    """What pip would add to Colab for the course (every extra a chapter installs), downloaded
    while the network is there, with what it takes to build the course's package offline."""
    extras = sorted({e for c in chapters.CHAPTERS for e in c.colab_extras})
    wheels = BUILD / "colab-wheelhouse"
    report = BUILD / "colab-report.json"
    constraints = BUILD / "colab-constraints.txt"
    constraints.write_text("".join(f"{name}=={version}\n" for name, version
                                   in versions(freeze(folder)).items() if "@" not in version))
    run([folder / "bin" / "python", "-m", "pip", "install", "--quiet", "--dry-run", "--report",
         report, "--constraint", constraints, f"{snapshot}[{','.join(extras)}]"])
    installed = versions(freeze(folder))
    wanted = [f"{p['metadata']['name']}=={p['metadata']['version']}"
              for p in json.loads(report.read_text())["install"]
              if p["metadata"]["name"] != DISTRIBUTION
              and installed.get(p["metadata"]["name"].lower().replace("_", "-")) is None]
    run([folder / "bin" / "python", "-m", "pip", "download", "--quiet", "--no-deps", "--dest",
         wheels, *wanted, "setuptools>=77", "wheel"])
    return wheels


@pytest.mark.parametrize("name", READY)
def test_chapter_runs_on_colab(colab, name):
    params = chapters.parameters(name, smoke=True)
    if name in chapters.MODEL_CHAPTER_USERS:  # the stand-alone path (make test runs the other)
        params["MODEL_DIR"] = "jobs/no-such-export"
    env = dict(colab["env"])
    if name == "07_cloud_training":  # as on a Colab runtime that cannot make a namespace
        env[namespace.NETNS_SWITCH] = "off"
    out = colab["out"] / f"{name}.ipynb"
    args = [sys.executable, "-m", "papermill", "--kernel", KERNEL, "--cwd", colab["content"],
            "--no-progress-bar", REPO / "notebooks" / f"{name}.ipynb", out]
    for key, value in params.items():
        args += ["-p", key, str(value)]
    run(colab["namespace"].wrap([str(a) for a in args]), env=env, timeout=1200)
    text = printed(out)
    assert "Python 3.13" in text and "TensorFlow 2.20.0" in text
    assert not course_printed_path(text), course_printed_path(text)
    if name == "07_cloud_training":
        assert colab_setup.COLAB_HOST_NETWORK in text


def test_console_scripts_of_the_installed_package_find_the_clone(colab, tmp_path):
    """`census` as Colab's `!census …` runs it: the non-editable copy in site-packages. It
    finds the course from the folder it runs in or CENSUS_COURSE_ROOT, or says it cannot:
    here an instructor grades a learner's (unanswered) exercise notebook of chapter 1."""
    [clone] = [p for p in colab["content"].iterdir()]
    assert clone.name == "census-course" and not (clone / "census-course").exists()
    learner = tmp_path / "submissions" / "ada"
    learner.mkdir(parents=True)
    shutil.copy(clone / "exercises" / "01_data.ipynb", learner)
    grade = [colab["venv"] / "bin" / "census", "exercises", "grade", learner.parent, "--smoke"]
    done = run(grade, cwd=clone, env=colab["env"], timeout=900)
    assert re.search(r"^ada\s+01_data .*0/\d", done.stdout, re.M), done.stdout
    lost = subprocess.run(grade, cwd=colab["content"], env=colab["env"], capture_output=True,
                          text=True, timeout=300)
    assert lost.returncode == 1 and "cannot find the course's files" in lost.stderr
    assert "CENSUS_COURSE_ROOT" in lost.stderr and "Traceback" not in lost.stderr


def test_the_setup_cells_upgraded_nothing_colab_has(colab):
    """Run last: every package Colab preinstalls (those of the list, and all the rest of the
    venv as built) has the version it had before the chapters' setup cells ran."""
    now = versions(freeze(colab["venv"]))
    for name, version in versions(colab["pristine"]).items():
        assert now.get(name) == version, (name, version, now.get(name))
    listed = versions(RUNTIME.read_text())
    assert {n: now.get(n) for n in listed} == listed
    assert {DISTRIBUTION, "papermill", "google-cloud-aiplatform"} <= set(now)  # and it installed
    shown = run([colab["venv"] / "bin" / "python", "-m", "pip", "show", DISTRIBUTION])
    assert f"Name: {DISTRIBUTION}\n" in shown.stdout
