"""An ordinary user's Linux laptop, rehearsed: user `nobody`, Debian's own python3 (3.11; pyenv's
interpreters sit in root's home, which nobody cannot read), a clone of its own. The README's
"Without make" commands set it up and run every chapter in smoke mode; `census cluster` runs a
real cluster in a rootless network namespace; `make lab` serves the notebooks."""
import hashlib
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
import urllib.request

import pytest

from census import DISTRIBUTION, processes, sources
from census.course import chapters
from conftest import BUILD, REPO, course_printed_path, printed, run

USER = "nobody"
PYTHON = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("runuser")
    or not os.path.exists(PYTHON),
    reason="needs root with runuser (to act as an ordinary user) and Debian's /usr/bin/python3")


def readme_commands(section):
    text = (REPO / "README.md").read_text().split(f"\n## {section}\n", 1)[1].split("\n## ")[0]
    [block] = re.findall(r"```bash\n(.*?)```", text, re.S)
    return block


@pytest.fixture(scope="module")
def home(repo_snapshot, raw_dir):
    """Folders nobody owns (home, tmp, data cache, a copy of the raw data, the clone) and a
    wheelhouse of the pins that root fills from its own pip cache (nobody has none; no network
    is needed after)."""
    user = pwd.getpwnam(USER)
    base = BUILD / "nonroot"
    pins = hashlib.sha256((REPO / "requirements.txt").read_bytes()).hexdigest()[:12]
    wheels = BUILD / f"wheelhouse-py311-{pins}"  # a new set of pins gets a new wheelhouse
    if not (wheels / ".ready").is_file():
        run([PYTHON, "-m", "pip", "download", "--quiet", "--dest", wheels, "-r",
             REPO / "requirements.txt", "setuptools>=77", "wheel"], timeout=2400)
        (wheels / ".ready").write_text("")
    for folder in ("home", "tmp", "cache", "data"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for path in sources.find_pair(raw_dir):  # root's own cache is no place nobody may read
        shutil.copyfile(path, base / "data" / path.name)
    for path in [BUILD, base, *base.iterdir()]:
        os.chmod(path, 0o755)
    os.chown(base, user.pw_uid, user.pw_gid)
    for folder in base.iterdir():
        os.chown(folder, user.pw_uid, user.pw_gid)
    env = {"HOME": base / "home", "TMPDIR": base / "tmp", "CENSUS_CACHE_DIR": base / "cache",
           "CENSUS_DATA_DIR": base / "data", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PATH": "/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8"}
    clone = base / "course"
    # The snapshot belongs to root: nobody's git must be told it may read it.
    (base / "home" / ".gitconfig").write_text(f"[safe]\n\tdirectory = {repo_snapshot}/.git\n")
    git = ["git"]
    if (clone / ".git").is_dir():  # keep its .venv: built once, then reused
        as_nobody([*git, "fetch", "--quiet", repo_snapshot.as_uri(), "main"], clone, env)
        as_nobody([*git, "reset", "--quiet", "--hard", "FETCH_HEAD"], clone, env)
        as_nobody([*git, "clean", "--quiet", "-fdx", "-e", ".venv"], clone, env)
    else:
        as_nobody([*git, "clone", "--quiet", repo_snapshot.as_uri(), clone], base, env)
    return {"clone": clone, "env": env}


def as_nobody(command, cwd, env, timeout=1800, check=True):
    settings = [f"{k}={v}" for k, v in env.items()]
    full = ["runuser", "-u", USER, "--", "env", "-i", *settings, *map(str, command)]
    if check:
        return run(full, cwd=cwd, timeout=timeout)
    return subprocess.run(full, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_readme_without_make_runs_as_an_ordinary_user(home):
    """The README's plain commands, as written: a venv of Debian's python3, the pins, the
    package, then the data and every chapter in smoke mode; the appendix, whose environment
    these commands do not make, skipped in one line that says how to make it — no root,
    no make."""
    block = readme_commands("Without make")
    assert "python3 -m venv .venv" in block and "census course run --smoke" in block
    done = as_nobody(["bash", "-euo", "pipefail", "-c", block], home["clone"], home["env"],
                     timeout=2400)
    assert "Census Income (UCI Adult)" in done.stdout
    assert "Course summary" in done.stdout
    for name in chapters.NAMES:
        assert f"[course] {name} done" in done.stdout
        text = printed(home["clone"] / "build" / "course" / f"{name}.ipynb")
        assert not course_printed_path(text), (name, course_printed_path(text))
    assert f"[course] {chapters.APPENDIX.name} skipped: " in done.stdout
    assert (home["clone"] / ".venv" / "bin" / "census").is_file()
    shown = as_nobody([".venv/bin/python", "-m", "pip", "show", DISTRIBUTION], home["clone"],
                      home["env"])
    assert f"Name: {DISTRIBUTION}\n" in shown.stdout


def test_census_cluster_runs_as_an_ordinary_user(home):
    """A real chief + worker + ps, isolated in a namespace an ordinary user may make."""
    done = as_nobody([".venv/bin/census", "cluster", "--workers", "1", "--ps", "1", "--",
                      "--job-dir", "jobs/nonroot-cluster", "--train-steps", "40",
                      "--eval-every-steps", "40", "--eval-steps", "2"],
                     home["clone"], home["env"], timeout=900)
    assert "[cluster] chief exit status 0; all tasks stopped" in done.stdout
    assert re.search(r"^\[worker-0\] ", done.stdout, re.M)
    assert list((home["clone"] / "jobs" / "nonroot-cluster" / "export" / "census").iterdir())


def test_make_lab_serves_the_notebooks_to_an_ordinary_user(home):
    port, token = processes.free_port(), secrets.token_hex(16)
    flags = (f"--port {port} --no-browser --IdentityProvider.token={token} "
             "--ServerApp.shutdown_no_activity_timeout=120")
    settings = [f"{k}={v}" for k, v in home["env"].items()]
    lab = subprocess.Popen(["runuser", "-u", USER, "--", "env", "-i", *settings, "make", "lab",
                            f"LAB_FLAGS={flags}", "PYTHON=/usr/bin/python3"],
                           cwd=home["clone"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    try:
        deadline, listing = time.monotonic() + 300, None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}"
                with urllib.request.urlopen(url, timeout=5) as r:
                    listing = r.read().decode()
                break
            except OSError:
                time.sleep(1)
        assert listing and '"01_data.ipynb"' in listing, lab.stdout.read() if lab.poll() else ""
    finally:
        os.killpg(lab.pid, 15)
        lab.wait(timeout=30)
