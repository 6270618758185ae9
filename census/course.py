"""The course runner: the one place that lists the chapters and the repository URL.

    python -m census.course run [--smoke] [--chapters 04_specs ...]   papermill, into build/
    python -m census.course outputs        full run, scrubbed, written back into notebooks/
    python -m census.course sync           rewrite the badges and setup cells (chapters, solutions)
    python -m census.course lab            JupyterLab on the course (127.0.0.1)

Notebooks import the small helpers at the bottom (`rel`, `tidy`, `tree`, `fresh_dir`,
`save_summary`) so that no output shows a machine path.
"""
import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from census import flags

REPO_URL = "https://github.com/census-course/census-course"  # the only copy of the URL
REPO_VARIABLE = "CENSUS_COURSE_REPO"  # a fork or mirror to clone on Colab instead
ROOT_VARIABLE = "CENSUS_COURSE_ROOT"  # where the course's files are, when it is not found
BRANCH = "main"


@dataclasses.dataclass(frozen=True)
class Chapter:
    name: str  # file stem in notebooks/, solutions/, exercises/
    title: str
    summary: str  # one line for the course map
    colab_extras: tuple = ()  # what its setup cell installs on Colab beside the package
    colab_ready: bool = True  # a badge, and a place in the Colab rehearsal


CHAPTERS = (
    Chapter("01_data", "The Census Income data",
            "Download the data (Cloud Storage, UCI fallback), read its columns, clean it, "
            "plot it."),
    Chapter("02_estimator", "The wide & deep model",
            "From `DNNLinearCombinedClassifier` and feature columns to one tf-keras model with "
            "preprocessing layers."),
    Chapter("03_datasets", "Feeding the model with tf.data",
            "`input_fn`: shuffle, repeat, batch, parse; tf.data against a plain Python loop, "
            "measured."),
    Chapter("04_specs", "TrainSpec, EvalSpec, train_and_evaluate",
            "One call trains, evaluates and exports; curves, TensorBoard, and a LightGBM "
            "baseline."),
    Chapter("05_export", "Serving inputs and exporters",
            "JSON, CSV and tf.Example receivers; Final, Latest and Best exporters; the export "
            "tree."),
    Chapter("06_saved_model_cli", "Inspecting and using the SavedModel",
            "`saved_model_cli show` / `run`, `census predict` on test.json, "
            "`tf.saved_model.load`."),
    Chapter("07_cloud_training", "The same code on a cluster, and on Vertex AI",
            "Scale tiers as local clusters (chief, workers, ps, evaluator) and as Vertex AI "
            "custom jobs.", colab_extras=("colab",)),
    Chapter("08_hyperparameter_tuning",
            "Hyperparameter tuning: the 2017 study, locally and on Vertex AI",
            "`hptuning_config.yaml` as a Vertex studySpec; `census tune` (Optuna, parallel "
            "trials, resumable); results, plots, the HyperparameterTuningJob.",
            colab_extras=("colab",)),
    Chapter("09_online_prediction", "Online prediction: a model server and Vertex AI endpoints",
            "`census serve` (TF Serving's REST API), versions, load; Model.upload / deploy / "
            "predict.", colab_extras=("colab",)),
)
NAMES = tuple(chapter.name for chapter in CHAPTERS)
BY_NAME = {chapter.name: chapter for chapter in CHAPTERS}
MODEL_CHAPTER = "04_specs"  # later chapters reuse its export when it exists
RESULTS_FILE = "results.json"  # chapter 4 writes its metrics here, in its job dir

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


# Absolute paths of this machine, and of machines in general: never in a committed notebook
# or in what a chapter prints (rel() and tidy() show paths relative to the course instead).
MACHINE_PATH = re.compile(r"(?<![\w.:/])(/(work|home|root|tmp|Users|var/folders|content)/|"
                          r"[A-Z]:\\\\)")


class CourseNotFound(FileNotFoundError):
    """The course's files (notebooks/, solutions/, test.json …) are nowhere to be found."""


def is_course(folder):
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
    for folder in (Path(__file__).resolve().parents[1], here, *here.parents):
        if is_course(folder):
            return folder
    raise CourseNotFound(f"cannot find the course's files (notebooks/, solutions/, test.json): "
                         f"work inside a clone of {REPO_URL}, or set {ROOT_VARIABLE} to one")


def setup_source(name):
    """The setup cell of chapter `name` (its code is the same in every chapter but for what
    it installs on Colab)."""
    extras = list(BY_NAME[name].colab_extras)
    return f'''\
# Setup. On Colab: fetch the course and install what this chapter needs, upgrading nothing
# Colab has. On your own machine: nothing to install, this finds your checkout.
import importlib.util, os, pathlib, subprocess, sys

if importlib.util.find_spec("google.colab"):
    here = pathlib.Path.cwd()
    clone = next((p for p in (here, *here.parents) if (p / "census" / "colab.py").is_file()),
                 here / "census-course")
    url = os.environ.get("{REPO_VARIABLE}", "{REPO_URL}")
    if not (clone / "census" / "colab.py").is_file():
        git = subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, str(clone)],
                             capture_output=True, text=True)
        if git.returncode:
            why = (git.stderr.strip().splitlines() or [f"git exit status {{git.returncode}}"])[-1]
            raise SystemExit(f"Could not clone {{url}} ({{why}}). Check the address, or set "
                             "{REPO_VARIABLE} to a fork or mirror, then run this cell again.")
    sys.path[:0] = [] if str(clone) in sys.path else [str(clone)]
    from census import colab
    colab.install(clone, {extras!r})
    os.environ["{ROOT_VARIABLE}"] = str(clone)

try:
    from census import course
except ModuleNotFoundError:
    raise SystemExit(f"The census package is not installed for {{sys.executable}}: run "
                     "`make lab`, or `pip install -e .` in your checkout.") from None
course.start()'''


def colab_url(name, folder="notebooks"):
    owner_repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{BRANCH}/{folder}/{name}.ipynb"


def badge(name, folder="notebooks"):
    """The markdown of an 'Open in Colab' badge: a chapter's, or its exercises' or solutions'."""
    return f"[![Open In Colab]({COLAB_BADGE})]({colab_url(name, folder)})"


def course_map():
    """The README's table of chapters: number, chapter, one line, badge, exercises."""
    lines = ["| # | Chapter | What you do | Colab | Practice |", "|---|---|---|---|---|"]
    for n, chapter in enumerate(CHAPTERS, 1):
        name = chapter.name
        practice = f"[exercises](exercises/{name}.ipynb), [solutions](solutions/{name}.ipynb)"
        colab = badge(name) if chapter.colab_ready else "—"
        lines.append(f"| {n} | [{chapter.title}](notebooks/{name}.ipynb) | {chapter.summary} | "
                     f"{colab} | {practice} |")
    return "\n".join(lines)


# --- parameters and the papermill runner ----------------------------------------------------

def parameters(name, smoke=False, job_root="jobs"):
    """The papermill parameters of one chapter: the smoke switch and its job dir(s)."""
    params = {"SMOKE": smoke, "JOB_DIR": f"{job_root}/{name}"}
    if name == "06_saved_model_cli":
        params["MODEL_DIR"] = f"{job_root}/{MODEL_CHAPTER}/export/census"
    return params


def execute(name, output_path, params, log_output=False):
    """Run one chapter with papermill (kernel started in notebooks/, as Jupyter would)."""
    import papermill
    return papermill.execute_notebook(
        str(root() / "notebooks" / f"{name}.ipynb"), str(output_path), parameters=params,
        cwd=str(root() / "notebooks"), kernel_name="python3", progress_bar=False, log_output=log_output)


def run(smoke=False, build_dir="build/course", job_root="jobs", chapters=NAMES, log_output=False):
    """Execute chapters in order into build_dir; return {chapter: seconds}."""
    out = root() / build_dir
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for name in chapters:
        start = time.perf_counter()
        print(f"[course] {name} ({'smoke' if smoke else 'full'}) ...", flush=True)
        execute(name, out / f"{name}.ipynb", parameters(name, smoke, job_root), log_output)
        seconds[name] = time.perf_counter() - start
        print(f"[course] {name} done in {seconds[name]:.0f} s", flush=True)
    return seconds


def summary(seconds, build_dir="build/course", job_root="jobs"):
    """A few lines: time per chapter, chapter 4's test-split metrics, the export path."""
    lines = ["", "Course summary", "--------------"]
    width = max(map(len, [*seconds, "total"]))
    lines += [f"  {name:<{width}} {s:6.0f} s" for name, s in seconds.items()]
    lines.append(f"  {'total':<{width}} {sum(seconds.values()):6.0f} s")
    results = root() / job_root / MODEL_CHAPTER / RESULTS_FILE
    if results.is_file():
        r = json.loads(results.read_text())
        m, b = r["wide_and_deep"], r["lightgbm"]
        lines.append(f"  test split, wide & deep: accuracy {m['accuracy']:.4f}  AUC {m['auc']:.4f}"
                     f"  ({m['global_step']} steps)")
        lines.append(f"  test split, LightGBM:    accuracy {b['accuracy']:.4f}  AUC {b['auc']:.4f}")
        lines.append(f"  export: {r['export']}")
    lines.append(f"  executed notebooks: {build_dir}/")
    return "\n".join(lines)


# --- committed outputs ----------------------------------------------------------------------

KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def scrub(nb):
    """Keep what a reader needs, drop what a run leaves behind: papermill's and nbclient's
    metadata and timings, the injected-parameters cell; execution counts renumbered 1, 2, …"""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEPT_NOTEBOOK_METADATA}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    count = 0
    for cell in cells:
        cell.metadata = {"tags": cell.metadata["tags"]} if cell.metadata.get("tags") else {}
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
    nb.cells = cells
    return nb


def write_outputs(job_root="jobs", build_dir="build/outputs", chapters=NAMES):
    """Full run of each chapter, in order; each executed notebook, scrubbed, replaces its source
    as soon as it has run (a failing chapter stops the run and keeps its committed outputs)."""
    import nbformat
    seconds = {}
    for name in chapters:
        seconds.update(run(smoke=False, build_dir=build_dir, job_root=job_root, chapters=[name]))
        nb = nbformat.read(root() / build_dir / f"{name}.ipynb", as_version=4)
        nbformat.write(scrub(nb), root() / "notebooks" / f"{name}.ipynb")
    return seconds


# --- badges and setup cells -----------------------------------------------------------------

BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def setup_cell_index(nb):
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "setup" in cell.metadata.get("tags", []):
            return i
    raise LookupError("no code cell tagged 'setup'")


def sync(names=NAMES, folder="notebooks"):
    """Rewrite each notebook's badge (first cell) and setup cell from this module."""
    import nbformat
    for name in names:
        path = root() / folder / f"{name}.ipynb"
        if not path.is_file():
            print(f"sync: no {rel(path)}", file=sys.stderr)
            continue
        nb = nbformat.read(path, as_version=4)
        nb.cells[0].source = BADGE_RE.sub(badge(name, folder).replace("\\", "\\\\"),
                                          nb.cells[0].source)
        nb.cells[setup_cell_index(nb)].source = setup_source(name)
        nbformat.write(nb, path)


# --- JupyterLab -----------------------------------------------------------------------------

def lab_command(port=8888, extra=()):
    """`jupyter lab` on the repository, loopback only, opening chapter 1."""
    return [sys.executable, "-m", "jupyter", "lab", "--ip", "127.0.0.1", "--port", str(port),
            f"--ServerApp.root_dir={root()}",
            f"--ServerApp.default_url=/lab/tree/notebooks/{NAMES[0]}.ipynb",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []), *extra]


# --- helpers the notebooks use --------------------------------------------------------------

MIN_TENSORFLOW = (2, 20)  # the oldest a rehearsal ran (Colab's)


def start():
    """What every chapter's setup cell calls: work from the course's folder (`root()`), so that
    `jobs/…` and `test.json` are found wherever Jupyter, papermill or nbgrader started the
    kernel; let `!census …` find the command and the course; print the versions in use."""
    folder = root()
    os.chdir(folder)
    os.environ[ROOT_VARIABLE] = str(folder)
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    check_versions()


def check_versions():
    """Import TensorFlow once with its C++ start-up messages (timestamped, about oneDNN and the
    missing GPU) kept out of the notebook, and its Python INFO logging off; check and print
    the versions in use."""
    import contextlib
    import importlib.metadata

    @contextlib.contextmanager
    def quiet_fd2():
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)

    with quiet_fd2():
        import tensorflow as tf
        tf.constant(0) + 0  # the first operation finds the devices (and reports no GPU)
    tf.get_logger().setLevel("WARNING")  # no INFO lines naming temporary export folders
    import tf_keras
    if tuple(map(int, tf.__version__.split(".")[:2])) < MIN_TENSORFLOW:
        raise SystemExit(f"TensorFlow {tf.__version__} is older than the course needs "
                         f"({'.'.join(map(str, MIN_TENSORFLOW))} or newer).")
    print(f"TensorFlow {tf.__version__}, tf-keras {tf_keras.__version__}, "
          f"census {importlib.metadata.version('census')}, Python {sys.version.split()[0]}")


def rel(path):
    """A path as a reader should see it: relative to the course's folder, or under ~."""
    path = Path(path).resolve()
    try:
        base = root()
    except CourseNotFound:
        base = Path.cwd().resolve()
    for folder, shown in ((base, ""), (Path.home().resolve(), "~")):
        try:
            tail = path.relative_to(folder).as_posix()
        except ValueError:
            continue
        return f"{shown}/{tail}" if shown else (tail or ".")
    return os.path.relpath(path, base)


def tidy(text):
    """Text with every absolute path of this machine replaced as `rel` would show it."""
    pattern = re.compile(r"(?<![\w.~])/[^\s'\",;:()\[\]]+")
    return pattern.sub(lambda m: rel(m.group(0)), str(text))


def tree(path, depth=4, limit=40, per_dir=6):
    """An `ls -R`-like listing of a directory, relative names, at most `per_dir` entries per
    directory (the rest counted) and `limit` lines in all."""
    root = Path(path)
    lines = [rel(root) + "/"]

    def walk(folder, prefix, level):
        entries = sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name))
        hidden = len(entries) - per_dir
        if hidden > 1:
            entries = entries[:per_dir - 1] + [f"… {hidden + 1} more"]
        for i, entry in enumerate(entries):
            if isinstance(entry, str):
                lines.append(f"{prefix}└── {entry}")
                continue
            last = i == len(entries) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{entry.name}"
                         f"{'/' if entry.is_dir() else ''}")
            if entry.is_dir() and level < depth:
                walk(entry, prefix + ("    " if last else "│   "), level + 1)
    walk(root, "", 1)
    if len(lines) > limit:
        lines = lines[:limit] + [f"… ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def fresh_dir(path):
    """Empty a job dir (so logs and curves show one run only) and return it as a string."""
    shutil.rmtree(path, ignore_errors=True)
    Path(path).mkdir(parents=True)
    return str(path)


def save_summary(job_dir, results):
    """Chapter 4's numbers, read back by `make course`'s summary."""
    Path(job_dir, RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")


def parser():
    p = argparse.ArgumentParser(prog="python -m census.course", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute the chapters with papermill into a build folder")
    r.add_argument("--smoke", action="store_true", help="the quick settings of each chapter")
    r.add_argument("--chapters", nargs="+", choices=NAMES, default=list(NAMES))
    r.add_argument("--build-dir", default="build/course")
    r.add_argument("--job-root", default="jobs")
    r.add_argument("--log-output", action="store_true", help="stream cell outputs")
    o = sub.add_parser("outputs", help="full run, scrubbed outputs written into notebooks/")
    o.add_argument("--job-root", default="jobs")
    o.add_argument("--chapters", nargs="+", choices=NAMES, default=list(NAMES))
    sub.add_parser("sync", help="rewrite the badge and setup cell of every chapter and solution")
    sub.add_parser("map", help="print the README's course map")
    lab = sub.add_parser("lab", help="JupyterLab on the course, on 127.0.0.1 (other options "
                         "go to `jupyter lab`)")
    lab.add_argument("--port", type=flags.PORT, default=8888)
    return p


def main(argv=None):
    p = parser()
    args, jupyter_options = p.parse_known_args(argv)
    if jupyter_options and args.command != "lab":
        p.error(f"unrecognized arguments: {' '.join(jupyter_options)}")
    os.chdir(root())
    if args.command == "run":
        seconds = run(args.smoke, args.build_dir, args.job_root, args.chapters, args.log_output)
        print(summary(seconds, args.build_dir, args.job_root))
    elif args.command == "outputs":
        seconds = write_outputs(args.job_root, chapters=args.chapters)
        print(summary(seconds, "build/outputs", args.job_root))
    elif args.command == "sync":  # then `make exercises` carries the solutions' changes over
        sync()
        sync(folder="solutions")
    elif args.command == "map":
        print(course_map())
    elif args.command == "lab":
        os.execv(sys.executable, lab_command(args.port, jupyter_options))


if __name__ == "__main__":
    main()
