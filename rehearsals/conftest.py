"""Rehearsals: the course where learners run it — Colab's Python and packages, an ordinary
user's account, other Pythons, TensorFlow 2.15 (Vertex AI's prebuilt prediction image) — each
in a venv of its own, built once per run and reused.

`make rehearse` runs them (CI does, after `make test`). A venv is kept under
build/rehearsals/venvs/<name>-<hash of what it holds>/ and rebuilt only when that changes.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "rehearsals"
REPORT = []  # lines a rehearsal measured (times, sizes), printed at the end of the run


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("measured")
        for line in REPORT:
            terminalreporter.write_line(line)


def run(command, timeout=1800, **kwargs):
    """subprocess.run that fails the test with the command's last output lines."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    if done.returncode:
        pytest.fail(f"{' '.join(map(str, command))} exited {done.returncode}:\n"
                    f"{(done.stdout + done.stderr)[-4000:]}")
    return done


def pyenv_python(minor):
    """pyenv's newest interpreter for `minor` (e.g. "3.13"), or None."""
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    found = sorted(Path(root or "/nonexistent", "versions").glob(f"{minor}.*/bin/python3"),
                   key=lambda p: tuple(int(x) for x in p.parts[-3].split(".") if x.isdigit()))
    return found[-1] if found else None


def venv(name, python, installs, after=None):
    """A venv of `python` with each `pip install ARGS` of `installs` done in order, then
    `after(folder)`; reused while the interpreter and the installs (files by content) stay
    the same. Returns its folder."""
    key = hashlib.sha256()
    key.update(run([python, "--version"]).stdout.encode())
    for args in installs:
        for arg in args:
            key.update(Path(arg).read_bytes() if Path(str(arg)).is_file() else str(arg).encode())
    key.update(repr(after and after.__doc__).encode())
    folder = BUILD / "venvs" / f"{name}-{key.hexdigest()[:12]}"
    if (folder / ".ready").is_file():
        return folder
    for stale in folder.parent.glob(f"{name}-*"):  # what an earlier version of it held
        shutil.rmtree(stale, ignore_errors=True)
    run([python, "-m", "venv", folder])
    for args in installs:
        run([folder / "bin" / "python", "-m", "pip", "install", "--quiet", *args])
    if after:
        after(folder)
    (folder / ".ready").write_text(freeze(folder))
    return folder


def freeze(folder):
    """`pip freeze` of a venv, as text."""
    return run([folder / "bin" / "python", "-m", "pip", "freeze", "--all"]).stdout


def versions(freeze_text):
    """{normalized name: version} of `pip freeze` lines."""
    out = {}
    for line in freeze_text.splitlines():
        for separator in ("==", " @ "):  # name==version, or name @ url (a local install)
            if separator in line and not line.startswith("#"):
                name, version = line.split(separator, 1)
                out[name.strip().lower().replace("_", "-").replace(".", "-")] = version.strip()
                break
    return out


def printed(notebook_path):
    """Everything an executed notebook printed (text outputs, tracebacks included)."""
    import nbformat
    nb = nbformat.read(notebook_path, as_version=4)
    texts = []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        for output in cell.outputs:
            texts.append(output.get("text", "") + "\n".join(output.get("traceback", [])))
            texts += [v for k, v in output.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(texts)


def course_printed_path(text):
    """The first absolute path of this machine that the course itself printed, or None. A
    library's warning naming its own source file (`From …/site-packages/tensorflow/…`, or
    dist-packages on Colab), shown as the tool printed it, is the learner's environment
    speaking, not the course: it does not count (a chapter never hides a taught command's
    stderr)."""
    from census.course import notebook
    library_files = r"\S*/(site|dist)-packages/(?!census/)\S*"  # the course's own still count
    return notebook.MACHINE_PATH.search(re.sub(library_files, "", text))


def snapshot(dest):
    """The working tree (tracked and new files, not ignored ones) as a git repository of one
    commit at `dest`, for a rehearsal to clone as learners clone the course."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=REPO).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    git = ["git", "-c", "user.name=rehearsal", "-c", "user.email=rehearsal@localhost"]
    run([*git, "init", "--quiet", "--initial-branch", "main"], cwd=dest)
    run([*git, "add", "--all"], cwd=dest)
    run([*git, "commit", "--quiet", "-m", "snapshot of the working tree"], cwd=dest)
    return dest


@pytest.fixture(scope="session")
def raw_dir():
    """A folder holding the raw pair, found as the tests find it (tests/course_data.py)."""
    sys.path.insert(0, str(REPO / "tests"))
    import course_data
    return course_data.or_fail(course_data.raw_folder, "the rehearsals")[0]


@pytest.fixture(scope="session")
def repo_snapshot():
    return snapshot(BUILD / "repo")


@pytest.fixture(scope="session")
def museum_venv():
    """The 2017 code's venv, made as a learner makes it, by `make museum`
    (`census.course.museum`: Python 3.11, TensorFlow 2.15.1 with tf.estimator, the course's
    package without its dependencies, the census-2017 kernel), here under build/rehearsals/;
    also the TensorFlow of Vertex AI's newest prebuilt prediction image. Built once (1.3 GB),
    reused while its pins stay; skips without pyenv's 3.11. Returns its folder (`bin/python`,
    `bin/saved_model_cli`, `share/jupyter`)."""
    from census.course import museum
    python = pyenv_python(museum.PYTHON)
    if python is None:
        pytest.skip(f"no Python {museum.PYTHON} here (pyenv)")
    folder = BUILD / "venvs" / "museum-py311"
    start = time.monotonic()
    made = run(["make", "--no-print-directory", "museum", f"MUSEUM_PYTHON={python}"], cwd=REPO,
               env=dict(os.environ, **{museum.VENV_VARIABLE: str(folder)}))
    REPORT.append(f"2017 venv (`make museum`, {museum.REQUIREMENTS}): "
                  f"{'made' if '[museum]' in made.stdout else 'found'} in "
                  f"{time.monotonic() - start:.0f} s, {size(folder)}")
    return folder


def size(folder):
    """The disk space of the files under `folder`, as text (e.g. "1.4 GB")."""
    total = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()
                and not p.is_symlink())
    return f"{total / 1e9:.1f} GB"
