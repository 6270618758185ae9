"""The chapters run with papermill (`census course run`: `make course`, `make outputs`), and
the outputs that are committed, scrubbed of what a run leaves behind; the kernels of every
notebook the course runs (chapters, grading, the tests) talk over Unix sockets, not TCP.
"""
import atexit
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from census.course import museum
from census.course.chapters import ALL_NAMES, BY_NAME, MODEL_CHAPTER, RESULTS_FILE, parameters
from census.course.environment import CHECK_FIGURES, root
from census.course.notebook import without_machine_paths


@functools.cache
def kernel_folder():
    """A folder only this user can open (mode 0700), for this process's kernels' connection
    files and sockets; removed when the process exits. Returns its path (str)."""
    folder = tempfile.mkdtemp(prefix="census-kernels-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


# ipykernel forwards what is written to file descriptors 1 and 2 (C libraries, child processes)
# into the notebook through a thread that outlives its IOPub thread at exit: a write during
# shutdown then fails ("RuntimeError: Event loop is closed", printed when the kernel's stderr
# stream is finalized; ipython/ipykernel#1155). Batch runs keep that output on the terminal
# instead; JupyterLab's kernels (learners reading C-level messages in the notebook) keep it.
KERNEL_ARGUMENTS = ("--IPKernelApp.capture_fd_output=False",)


@functools.cache
def kernel_manager_class(sync=False):
    """The kernel manager of every notebook the course runs in batch (papermill, nbclient,
    nbval): jupyter_client's AsyncKernelManager (KernelManager if `sync`, for nbval) whose
    ipykernel kernels start with KERNEL_ARGUMENTS, are shut down without a SIGINT first, and
    talk over the "ipc" transport — the connection file and Unix sockets in `kernel_folder()`
    — so no kernel listens on a TCP port (where there are no Unix sockets, Windows, over TCP
    as before). Raises ImportError without jupyter_client."""
    import jupyter_client
    from traitlets import default
    base = jupyter_client.KernelManager if sync else jupyter_client.AsyncKernelManager

    class CourseKernelManager(base):
        """A kernel manager for batch runs: Unix sockets in a private folder, fd output on the
        terminal."""

        def format_kernel_cmd(self, extra_arguments=None):
            return super().format_kernel_cmd([*(extra_arguments or []), *KERNEL_ARGUMENTS])

        async def _async_interrupt_kernel(self):
            # Not as the first step of a shutdown: the notebook has finished, and a SIGINT
            # landing while the kernel handles a message makes it log "ERROR |
            # KeyboardInterrupt caught in kernel." (a busy kernel is stopped by SIGTERM).
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        if os.name == "posix":
            @default("transport")
            def _ipc_transport(self):
                return "ipc"

            @default("connection_file")  # the sockets are named after it: {folder}/{id}-ipc-N
            def _private_connection_file(self):
                return os.path.join(kernel_folder(), f"{uuid.uuid4().hex[:8]}.json")

    return CourseKernelManager


def papermill_run(input_path, output_path, parameters, cwd, kernel_name="python3", **options):
    """papermill.execute_notebook with the course's kernel (over IPC: see
    `kernel_manager_class`), no progress bar; `options` go to papermill (allow_errors,
    execution_timeout, log_output …). Returns the executed notebook. Raises papermill's
    PapermillExecutionError for a failing cell."""
    import papermill
    return papermill.execute_notebook(
        str(input_path), str(output_path), parameters=parameters, cwd=str(cwd),
        kernel_name=kernel_name, progress_bar=False, kernel_manager_class=kernel_manager_class(),
        **options)


def execute(name, output_path, params, log_output=False):
    """Run one chapter with papermill (kernel started in notebooks/, as Jupyter would), in its
    kernel: the appendix in the 2017 venv's (`census.course.museum`)."""
    kernel = BY_NAME[name].kernel
    saved = os.environ.get("JUPYTER_PATH")
    if kernel != "python3":
        os.environ["JUPYTER_PATH"] = museum.jupyter_path()["JUPYTER_PATH"]
    try:
        return papermill_run(root() / "notebooks" / f"{name}.ipynb", output_path, params,
                             root() / "notebooks", kernel, log_output=log_output)
    finally:
        os.environ.pop("JUPYTER_PATH", None)
        if saved is not None:
            os.environ["JUPYTER_PATH"] = saved


def can_run(name):
    """Whether chapter `name` can run here: the appendix needs the 2017 environment (`make
    museum`); without it, prints that it is skipped and how to make it."""
    if BY_NAME[name].kernel == "python3" or museum.is_ready():
        return True
    print(f"[course] {name} skipped: it runs in the 2017 code's environment, not made here "
          f"(`make museum`, or `census course museum`: Python {museum.PYTHON}, 1.3 GB)",
          flush=True)
    return False


def run(smoke=False, build_dir="build/course", job_root="jobs", chapters=ALL_NAMES,
        log_output=False):
    """Execute chapters in order into build_dir; return {chapter: seconds}."""
    out = root() / build_dir
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for name in filter(can_run, chapters):
        start = time.perf_counter()
        print(f"[course] {name} ({'smoke' if smoke else 'full'}) ...", flush=True)
        execute(name, out / f"{name}.ipynb", parameters(name, smoke, root() / job_root),
                log_output)
        seconds[name] = time.perf_counter() - start
        print(f"[course] {name} done in {seconds[name]:.0f} s", flush=True)
    return seconds


def summary(seconds, build_dir="build/course", job_root="jobs"):
    """A few lines: time per chapter, chapter 4's metrics (validation, and the test split scored
    once), the export path."""
    lines = ["", "Course summary", "--------------"]
    width = max(map(len, [*seconds, "total"]))
    lines += [f"  {name:<{width}} {s:6.0f} s" for name, s in seconds.items()]
    lines.append(f"  {'total':<{width}} {sum(seconds.values()):6.0f} s")
    results = root() / job_root / MODEL_CHAPTER / RESULTS_FILE
    if results.is_file():
        r = json.loads(results.read_text())
        m, b = r["wide_and_deep"], r["lightgbm"]
        for split in ("validation", "test"):
            lines.append(f"  {split}, wide & deep: accuracy {m[split]['accuracy']:.4f}  "
                         f"AUC {m[split]['auc']:.4f}  ({m['global_step']} steps)")
            lines.append(f"  {split}, LightGBM:    accuracy {b[split]['accuracy']:.4f}  "
                         f"AUC {b[split]['auc']:.4f}")
        lines.append(f"  export: {r['export']}")
    lines.append(f"  executed notebooks: {build_dir}/")
    return "\n".join(lines)


KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")
KEPT_CELL_METADATA = ("tags", "nbgrader")  # nbgrader's: the solutions' answer and check cells


def kernelspec(kernel="python3"):
    """A notebook's kernelspec metadata for `kernel`: Jupyter's "python3", or the 2017 code's
    (`census.course.museum`), which JupyterLab then opens the appendix in."""
    if kernel == museum.KERNEL:
        return {"display_name": museum.KERNEL_DISPLAY_NAME, "language": "python",
                "name": kernel}
    return {"display_name": "Python 3", "language": "python", "name": "python3"}


def scrub(nb, kernel="python3"):
    """Keep what a reader needs, drop what a run leaves behind: papermill's and nbclient's
    metadata and timings, the injected-parameters cell; execution counts renumbered 1, 2, …;
    the course's folder left out of printed paths; the kernelspec of `kernel`. A cell keeps
    its tags and, in the solutions, nbgrader's metadata."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEPT_NOTEBOOK_METADATA}
    nb.metadata["kernelspec"] = kernelspec(kernel)
    nb.metadata["language_info"] = {"name": "python"}
    cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    count = 0
    for cell in cells:
        cell.metadata = {k: v for k, v in cell.metadata.items()
                         if k in KEPT_CELL_METADATA and v}
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            cell.outputs = as_a_terminal_shows(cell.outputs)
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
                if output.output_type == "stream":  # a library's warning names its file
                    output.text = without_machine_paths(output.text)
    nb.cells = cells
    return nb


def as_a_terminal_shows(outputs):
    """A cell's outputs with consecutive stream outputs of one stream joined, and each line
    as a terminal leaves it: the text after its last carriage return (a progress bar's last
    frame, not every frame)."""
    joined = []
    for output in outputs:
        if (output.output_type == "stream" and joined
                and joined[-1].output_type == "stream" and joined[-1].name == output.name):
            joined[-1].text += output.text
        else:
            joined.append(output)
    for output in joined:
        if output.output_type == "stream":
            output.text = FRAMES.sub("", output.text)
    return joined


FRAMES = re.compile(r"[^\n]*\r(?!\n)")  # a line's text up to its last carriage return


MAX_TEXT_OUTPUT = 12_000  # characters per text output of a committed chapter
MAX_IMAGE = 120_000  # base64 characters per image
MAX_NOTEBOOK = 600_000  # bytes per committed notebook


def unscrubbed(path):
    """What keeps the committed notebook at `path` from being as `make outputs` writes it
    (`scrub`): run metadata, cells not run top to bottom once, an error output, a machine path
    or token, an output or file too large. Returns a list of one-line problems, [] if none."""
    import nbformat

    from census.course.notebook import MACHINE_PATH
    nb = nbformat.read(path, as_version=4)
    extra = sorted(set(nb.metadata) - set(KEPT_NOTEBOOK_METADATA))
    problems = [f"notebook metadata {extra}"] if extra else []
    if os.path.getsize(path) >= MAX_NOTEBOOK:
        problems.append(f"{os.path.getsize(path):,} bytes, over {MAX_NOTEBOOK:,}")
    counts = []
    for number, cell in enumerate(nb.cells, 1):
        where = f"cell {number} ({cell.source[:40]!r})"
        if set(cell.metadata) - set(KEPT_CELL_METADATA):
            problems.append(f"{where}: metadata "
                            f"{sorted(set(cell.metadata) - set(KEPT_CELL_METADATA))}")
        if "injected-parameters" in cell.metadata.get("tags", []):
            problems.append(f"{where}: papermill's injected parameters")
        if MACHINE_PATH.search(cell.source):
            problems.append(f"{where}: a machine path in the source")
        if cell.cell_type != "code":
            continue
        counts.append(cell.execution_count)
        for output in cell.outputs:
            text = output_text(output)
            if output.output_type == "error":
                problems.append(f"{where}: an error output")
            if len(text) >= MAX_TEXT_OUTPUT:
                problems.append(f"{where}: an output of {len(text):,} characters")
            if MACHINE_PATH.search(text):
                problems.append(f"{where}: a machine path in the output "
                                f"({MACHINE_PATH.search(text).group(0)!r})")
            if "token=" in text:
                problems.append(f"{where}: a token in the output")
            if FRAMES.search(text):
                problems.append(f"{where}: carriage returns (a progress bar's frames)")
            problems += [f"{where}: an image of {len(value):,} characters" for key, value
                         in output.get("data", {}).items()
                         if key.startswith("image/") and len(value) >= MAX_IMAGE]
    if counts != list(range(1, len(counts) + 1)):
        problems.append("not run top to bottom once (execution counts are not 1, 2, 3 …)")
    return problems


def check(paths):
    """`census course check`: print each problem `unscrubbed` finds in the notebooks at `paths`
    to stderr; returns the exit status (1 if any)."""
    problems = [f"{path}: {problem}" for path in paths for problem in unscrubbed(path)]
    if problems:
        print("\n".join(problems + ["Regenerate them with `make outputs` (chapters) or "
                                    "`make solution-outputs` (solutions): full runs."]),
              file=sys.stderr)
    return 1 if problems else 0


def output_text(output):
    """The text an output shows (images left out)."""
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return "\n".join(v for k, v in output.get("data", {}).items() if not k.startswith("image/"))


def unreadable_figures(log_path):
    """The problems `census.plots.check_shown_figures` logged to `log_path`: a list of
    "figure title: problem" lines ([] if none, or if nothing was logged)."""
    if not Path(log_path).is_file():
        return []
    lines = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    return [f"{line['title'] or 'a figure'}: {problem}" for line in lines
            for problem in line["problems"]]


def write_outputs(job_root="jobs", build_dir="build/outputs", chapters=ALL_NAMES):
    """Full run of each chapter, in order; each executed notebook, scrubbed, replaces its source
    as soon as it has run (a failing chapter stops the run and keeps its committed outputs,
    and so does a figure with text that overlaps or runs off it: RuntimeError)."""
    import nbformat
    seconds = {}
    for name in chapters:
        figures = root() / build_dir / f"{name}.figures.jsonl"
        figures.unlink(missing_ok=True)
        os.environ[CHECK_FIGURES] = str(figures)
        try:
            seconds.update(run(smoke=False, build_dir=build_dir, job_root=job_root,
                               chapters=[name]))
        finally:
            del os.environ[CHECK_FIGURES]
        problems = unreadable_figures(figures)
        if problems:
            raise RuntimeError(f"{name}: figures a reader cannot read: " + "; ".join(problems))
        nb = nbformat.read(root() / build_dir / f"{name}.ipynb", as_version=4)
        nbformat.write(scrub(nb, BY_NAME[name].kernel), root() / "notebooks" / f"{name}.ipynb")
    return seconds


if __name__ == "__main__":  # pre-commit's hook: needs nbformat only, not the whole course
    sys.exit(check(sys.argv[1:]))
