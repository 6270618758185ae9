"""The 2017 code's own environment (the appendix): Python 3.11 with TensorFlow 2.15.1, the last
TensorFlow with `tf.estimator`, in a venv of its own (`.venv-2017`, `make museum`) that never
touches the course's. It holds `requirements-2017.txt` (exact pins), the course's package
installed without its dependencies (the 2017 code imports only `census.data`, which needs no
TensorFlow), and a Jupyter kernel, `census-2017`, installed inside the venv — not in the user's
home — and found through JUPYTER_PATH (`jupyter_path`). The kernel knows the course's own
Python (`TODAY_PYTHON`), so that the appendix can run today's `census` beside the 2017 code.

Standard library only: the course's venv sets it up, the 2017 kernel starts with it (`start`).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from census.course.chapters import APPENDIX
from census.course.environment import root

REQUIREMENTS = "requirements-2017.txt"
VENV = ".venv-2017"  # in the course's folder
VENV_VARIABLE = "CENSUS_MUSEUM_VENV"  # another 2017 venv to run the appendix in (rehearsals)
KERNEL = APPENDIX.kernel  # "census-2017"
KERNEL_DISPLAY_NAME = "Python 3.11 · TensorFlow 2.15 (the 2017 code)"
TODAY_PYTHON = "CENSUS_TODAY_PYTHON"  # the kernel's pointer to the course's own Python
PYTHON = "3.11"  # TF 2.15.1 has wheels for 3.9-3.11; the pinned IPython 9 needs 3.11
TENSORFLOW = "2.15"


class MuseumError(RuntimeError):
    """The 2017 environment cannot be made or used here (one sentence saying why)."""


def folder():
    """The 2017 venv: $CENSUS_MUSEUM_VENV if set, else `.venv-2017` in the course's folder."""
    return Path(os.environ.get(VENV_VARIABLE) or root() / VENV)


def is_ready(venv=None):
    """Whether the 2017 venv at `venv` (default `folder()`) was set up to the end, with the
    pins `requirements-2017.txt` holds now."""
    marker = Path(venv or folder()) / ".ready"
    return marker.is_file() and marker.read_text() == fingerprint()


def fingerprint():
    """What a ready 2017 venv records: a hash of the pins it was made with."""
    import hashlib
    return hashlib.sha256((root() / REQUIREMENTS).read_bytes()).hexdigest()[:16] + "\n"


def find_python():
    """A Python 3.11 interpreter: `python3.11` on PATH, this one, or pyenv's newest 3.11. Returns
    its path, or None."""
    found = shutil.which(f"python{PYTHON}")
    if found:
        return found
    if sys.version.startswith(PYTHON + "."):
        return sys.executable
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions = sorted(Path(pyenv, "versions").glob(f"{PYTHON}.*/bin/python{PYTHON}"),
                      key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()])
    return str(versions[-1]) if versions else None


def installs(course=None):
    """The `pip install` arguments of the 2017 venv, in order: the pins, then the course's
    package without its dependencies (editable: the checkout's code)."""
    course = Path(course or root())
    return [["-r", str(course / REQUIREMENTS)], ["--no-deps", "-e", str(course)]]


def install_kernel(venv, today_python=None):
    """Install the `census-2017` kernel inside `venv` (share/jupyter/kernels/), its environment
    naming `today_python` (default: this Python, the course's) as TODAY_PYTHON."""
    import json
    venv = Path(venv)
    run([venv / "bin" / "python", "-m", "ipykernel", "install", "--prefix", venv, "--name",
         KERNEL, "--display-name", KERNEL_DISPLAY_NAME])
    spec = venv / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json"
    kernel = json.loads(spec.read_text())
    kernel["env"] = {TODAY_PYTHON: str(today_python or sys.executable)}
    spec.write_text(json.dumps(kernel, indent=1))


def setup(venv=None, python=None):
    """`make museum`: the 2017 venv at `venv` (default `folder()`), made with `python` (default
    `find_python()`), the pins and the course's package installed, the kernel inside; nothing
    done if it is ready. Prints each step. Raises MuseumError without a Python 3.11."""
    venv = Path(venv or folder())
    if is_ready(venv):
        return venv
    python = python or find_python()
    if python is None:
        raise MuseumError(f"the 2017 environment needs Python {PYTHON} (TensorFlow "
                          f"{TENSORFLOW} has no wheels for newer ones): install it, or name "
                          "one with MUSEUM_PYTHON=/path/to/python3.11")
    version = run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).strip()
    if version != PYTHON:
        raise MuseumError(f"{python} is Python {version}; the 2017 environment needs {PYTHON}")
    print(f"[museum] {venv.name}: Python {PYTHON} venv", flush=True)
    run([python, "-m", "venv", "--clear", venv])
    for args in installs():
        print(f"[museum] pip install {' '.join(Path(a).name for a in args)} (TensorFlow 2.15 "
              "is a 500 MB download)" if args[0] == "-r" else
              "[museum] pip install --no-deps -e . (the course's package)", flush=True)
        run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", *args])
    install_kernel(venv)
    print(f"[museum] kernel {KERNEL!r} installed in {venv.name}/share/jupyter", flush=True)
    (venv / ".ready").write_text(fingerprint())
    return venv


def jupyter_path(env=None, venv=None):
    """A copy of `env` (default os.environ) whose JUPYTER_PATH starts with the 2017 venv's
    share/jupyter, where Jupyter finds the `census-2017` kernel."""
    env = dict(os.environ if env is None else env)
    paths = [str(Path(venv or folder()) / "share" / "jupyter"), env.get("JUPYTER_PATH", "")]
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in paths if p)
    return env


def run(command, **kwargs):
    """Run `command`; its stdout (text). Raises MuseumError with the last lines it printed."""
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise MuseumError(f"{Path(str(command[0])).name} {' '.join(map(str, command[1:3]))} … "
                          f"exited {done.returncode}:\n{tail}")
    return done.stdout


def start():
    """What the appendix's setup cell calls, in the `census-2017` kernel: work from the course's
    folder, check that this is TensorFlow 2.15 with tf.estimator, print the versions of both
    environments. Returns the course's own Python (for today's `census`, `saved_model_cli`).
    Raises SystemExit, in one sentence, in any other kernel."""
    os.chdir(root())
    today = os.environ.get(TODAY_PYTHON)
    try:
        import tensorflow as tf
        tf.estimator  # noqa: B018 (gone from TF 2.16: AttributeError)
    except (ImportError, AttributeError):
        raise SystemExit(f"This chapter runs in the 2017 code's environment: run `make museum`, "
                         f"then pick the kernel {KERNEL_DISPLAY_NAME!r} ({KERNEL}).") from None
    if not today or not Path(today).is_file():
        raise SystemExit(f"The kernel does not know the course's own Python ({TODAY_PYTHON}): "
                         "run `make museum` again.")
    versions = run([today, "-c", "import sys, tensorflow as tf, tf_keras; print(tf.__version__,"
                    " tf_keras.__version__, sys.version.split()[0])"],
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")).split()
    print(f"2017 code: TensorFlow {tf.__version__} (tf.estimator), Python "
          f"{sys.version.split()[0]}\ntoday's:   TensorFlow {versions[0]}, tf-keras {versions[1]},"
          f" Python {versions[2]}")
    return today
