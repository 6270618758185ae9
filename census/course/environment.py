"""Where the course runs: its files, found one way everywhere, and the set-up every chapter
does first (`start`).
"""
import os
import sys
from pathlib import Path

from census.course.chapters import NAMES, REPO_URL

ROOT_VARIABLE = "CENSUS_COURSE_ROOT"  # where the course's files are, when it is not found
CHECK_FIGURES = "CENSUS_CHECK_FIGURES"  # a file: `start` has every figure shown checked into it


class CourseNotFound(FileNotFoundError):
    """The course's files (notebooks/, solutions/, test.json …) are nowhere to be found."""


def is_course(folder):
    """Whether `folder` holds the course's files (its notebooks/)."""
    return (Path(folder) / "notebooks" / f"{NAMES[0]}.ipynb").is_file()


def root():
    """The folder holding the course's files, found one way everywhere: `$CENSUS_COURSE_ROOT`
    if set (Colab's setup cell sets it); else the checkout this package runs from (an
    editable install, or a clone on sys.path); else the current folder or one above it (a
    console script beside a clone). Raises CourseNotFound."""
    if os.environ.get(ROOT_VARIABLE):
        folder = Path(os.environ[ROOT_VARIABLE]).expanduser().resolve()
        if not is_course(folder):
            raise CourseNotFound(f"{ROOT_VARIABLE}={folder} holds no course "
                                 f"(no notebooks/{NAMES[0]}.ipynb)")
        return folder
    here = Path.cwd().resolve()
    package = Path(__file__).resolve().parents[2]  # census/course/environment.py → its checkout
    for folder in (package, here, *here.parents):
        if is_course(folder):
            return folder
    raise CourseNotFound(f"cannot find the course's files (notebooks/, solutions/, test.json): "
                         f"work inside a clone of {REPO_URL}, or set {ROOT_VARIABLE} to one")


MIN_TENSORFLOW = (2, 20)  # the oldest a rehearsal ran (Colab's)

_started_in = None  # the folder the kernel started in, before `start()` moved to the course's


def start():
    """What every chapter's setup cell calls: work from the course's folder (`root()`), so that
    `jobs/…` and `test.json` are found wherever Jupyter, papermill or nbgrader started the
    kernel; let `!census …` find the command and the course; print the versions in use. The
    folder the kernel started in is remembered for `user_path`."""
    global _started_in
    _started_in = _started_in or Path.cwd()
    folder = root()
    os.chdir(folder)
    os.environ[ROOT_VARIABLE] = str(folder)
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    check_versions()
    if os.environ.get(CHECK_FIGURES):  # the course's own runs: every figure shown is checked
        from census import plots
        plots.check_shown_figures(os.environ[CHECK_FIGURES])


def user_path(path, default):
    """A path as the user meant it, for a chapter's path parameter or a command's option.

    `path` None: `default`, a path in the course's folder (e.g. "jobs/04_specs"). A relative
    `path` is taken from where the user asked: the folder the kernel started in, before
    `start()` moved to the course's folder (papermill's `--cwd`, JupyterLab's notebook folder;
    papermill#55), or else the current folder (a command, before it moves). Returns text:
    relative to the course's folder when the path lies inside it (what a chapter prints stays
    free of machine paths), else absolute."""
    if path is None:
        return str(default)
    full = Path(_started_in or Path.cwd(), Path(path).expanduser()).resolve()
    try:
        return full.relative_to(root()).as_posix()
    except ValueError:
        return str(full)


def check_versions():
    """Import TensorFlow without its start-up notes (`census.quiet`: a real error still
    shows), check that it is recent enough, and print the versions in use. Raises SystemExit,
    in one sentence, for a TensorFlow older than MIN_TENSORFLOW."""
    import importlib.metadata

    from census import DISTRIBUTION, quiet
    tf = quiet.import_tensorflow()
    import tf_keras
    if tuple(map(int, tf.__version__.split(".")[:2])) < MIN_TENSORFLOW:
        raise SystemExit(f"TensorFlow {tf.__version__} is older than the course needs "
                         f"({'.'.join(map(str, MIN_TENSORFLOW))} or newer).")
    print(f"TensorFlow {tf.__version__}, tf-keras {tf_keras.__version__}, {DISTRIBUTION} "
          f"{importlib.metadata.version(DISTRIBUTION)}, Python {sys.version.split()[0]}")
