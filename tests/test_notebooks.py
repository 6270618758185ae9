"""The chapters: committed cleanly, generated badges and setup cells, executed in smoke mode
with papermill, checked with nbval, served by JupyterLab, and TensorBoard's command works."""
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from census import course
from census.course import chapters, cli as course_cli, environment, notebook, runner, sync
from census.processes import free_port
from smoke import SMOKE_ROOT

REPO = environment.root()
NOTEBOOKS = REPO / "notebooks"
CHAPTERS_WITH_PLOTS = ("01_data", "02_estimator", "03_datasets", "04_specs")
MACHINE_PATH = notebook.MACHINE_PATH


def read(name):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


# --- the committed notebooks ------------------------------------------------------------------

def test_every_chapter_is_listed_once():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(chapters.ALL_NAMES)
    assert sorted(chapters.ALL_NAMES)[-1] == chapters.APPENDIX.name, "the appendix sorts last"


@pytest.mark.parametrize("name", chapters.ALL_NAMES)
def test_committed_notebook_is_clean(name):
    """Outputs policy: committed with outputs from a full run, scrubbed, small, in order
    (`census course check`, which pre-commit runs too)."""
    nb = read(name)
    nbformat.validate(nb)
    assert runner.unscrubbed(NOTEBOOKS / f"{name}.ipynb") == []
    if name in CHAPTERS_WITH_PLOTS:
        assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs), "the plots are rendered into the committed outputs"


def test_the_scrub_check_finds_what_a_run_leaves_behind(tmp_path):
    """A chapter as papermill leaves it, with an error and a machine path: each is named,
    `census course check` exits 1; scrubbed, the same notebook passes."""
    nb = read("01_data")
    nb.metadata["papermill"] = {"duration": 12.5}
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[0].execution_count = 7
    code[1].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="x",
                                                  traceback=["ValueError: x"]))
    code[2].outputs.append(nbformat.v4.new_output("stream", text=f"saved to {REPO}/jobs/x\n"))
    frames = ["\rjob: 0 rows", "\rjob: 64 rows", "\rjob: 128 rows\r\ndone\r\n"]
    code[3].outputs += [nbformat.v4.new_output("stream", text=f) for f in frames]
    bar_cell = nb.cells.index(code[3])
    path = tmp_path / "01_data.ipynb"
    nbformat.write(nb, path)
    problems = runner.unscrubbed(path)
    assert problems[0] == "notebook metadata ['papermill']"
    assert any("an error output" in p for p in problems)
    assert any("a machine path in the output" in p for p in problems)
    assert any("carriage returns (a progress bar's frames)" in p for p in problems)
    assert problems[-1].startswith("not run top to bottom once")
    done = subprocess.run([sys.executable, "-m", "census", "course", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and f"{path}: notebook metadata ['papermill']" in done.stderr
    code[1].outputs.pop()
    nbformat.write(runner.scrub(nb), path)
    assert runner.unscrubbed(path) == []
    assert nbformat.read(path, as_version=4).cells[bar_cell].outputs[-1].text.endswith(
        "job: 128 rows\r\ndone\r\n")  # the bar's last frame, as a terminal shows it


@pytest.mark.parametrize("name", chapters.NAMES)
def test_chapter_conventions(name):
    nb = read(name)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# Chapter ")
    assert chapters.badge(name) in first.source
    assert f"blob/main/notebooks/{name}.ipynb" in chapters.badge(name)
    assert "What you will learn" in first.source
    assert any(c.cell_type == "markdown" and "Then and now" in c.source and "|---|" in c.source
               for c in nb.cells), "a then-and-now table"
    setup = nb.cells[sync.setup_cell_index(nb)]
    assert setup.source == sync.setup_source(name), "run `census course sync`"
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    assert "QUICK = False" in parameters[0].source
    assert "JOB_DIR = None" in parameters[0].source
    assert nb.cells.index(parameters[0]) > sync.setup_cell_index(nb)
    paths = nb.cells[nb.cells.index(parameters[0]) + 1]  # after papermill's injected values
    assert f'JOB_DIR = course.user_path(JOB_DIR, "jobs/{name}")' in paths.source
    last = nb.cells[-1]
    assert last.cell_type == "markdown"
    following = chapters.ALL_NAMES[chapters.ALL_NAMES.index(name) + 1]
    assert f"({following}.ipynb)" in last.source, "point to the next chapter (or the appendix)"
    assert f"(../exercises/{name}.ipynb)" in last.source, "point to the chapter's exercises"


def test_appendix_conventions():
    """The appendix: no badge (Colab's Python cannot install TF 2.15) and says so; no
    exercises; its own kernel; the parameters as every chapter has them."""
    name = chapters.APPENDIX.name
    nb = read(name)
    first = nb.cells[0]
    assert first.source.startswith("# Appendix ") and "Open In Colab" not in first.source
    assert "Not on Colab" in first.source and "Python 3.13" in first.source
    assert not (REPO / "exercises" / f"{name}.ipynb").exists()
    assert nb.metadata["kernelspec"]["name"] == chapters.APPENDIX.kernel
    assert any(c.cell_type == "markdown" and "Then and now" in c.source and "|---|" in c.source
               for c in nb.cells), "a then-and-now table"
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "QUICK = False" in parameters[0].source
    paths = nb.cells[nb.cells.index(parameters[0]) + 1]
    assert f'JOB_DIR = course.user_path(JOB_DIR, "jobs/{name}")' in paths.source
    assert "exercises" not in nb.cells[-1].source


@pytest.mark.parametrize("name", chapters.ALL_NAMES)
def test_papermill_sees_the_parameters(name):
    """`papermill … -p NAME VALUE` works for every parameter the runner passes."""
    import papermill
    declared = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert set(chapters.parameters(name, smoke=True)) <= set(declared)
    if name == "04_specs":
        assert {"TRAIN_STEPS", "BATCH_SIZE", "EVAL_EVERY"} <= set(declared)


def test_readme_course_map_is_generated():
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Course map\n", 1)[1].split("\n## ")[0]
    assert chapters.course_map() in section
    assert "\n## Notebooks\n" in readme


def test_relative_links_resolve():
    """No dead links between the README, the chapters, the exercises and the solutions."""
    documents = {path: path.read_text() for path in (REPO / "README.md",
                                                     NOTEBOOKS / "README.md")}
    for folder in ("notebooks", "exercises", "solutions"):
        for path in sorted((REPO / folder).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            documents[path] = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for path, text in documents.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:|#", target):
                continue
            assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: {target}"


def test_setup_cell_finds_the_checkout_from_any_folder(monkeypatch, tmp_path):
    """Started anywhere (papermill's folder, an nbgrader course directory), the setup cell
    moves to the course and installs nothing; `!census` and console scripts find both."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.environ["PATH"])
    monkeypatch.delenv(environment.ROOT_VARIABLE, raising=False)
    exec(sync.setup_source("07_cloud_training"), {})
    assert Path.cwd() == REPO and os.environ[environment.ROOT_VARIABLE] == str(REPO)
    assert os.environ["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable) or \
        os.path.dirname(sys.executable) in os.environ["PATH"].split(os.pathsep)
    assert list(tmp_path.iterdir()) == []  # nothing cloned, nothing installed


def test_a_path_parameter_is_taken_from_where_the_kernel_started(monkeypatch, tmp_path):
    """None: the chapter's own folder in the course; a relative path: from the folder the
    kernel started in, though the setup cell has moved; a path inside the course: shown
    relative to it (no machine path printed)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.environ["PATH"])
    monkeypatch.setenv(environment.ROOT_VARIABLE, str(REPO))
    monkeypatch.setattr(environment, "_started_in", None)
    monkeypatch.setattr(environment, "check_versions", lambda: None)
    environment.start()
    assert Path.cwd() == REPO
    assert course.user_path(None, "jobs/04_specs") == "jobs/04_specs"
    assert course.user_path("jobs/x", "jobs/04_specs") == str(tmp_path / "jobs" / "x")
    assert course.user_path(str(REPO / "jobs" / "y"), "jobs/04_specs") == "jobs/y"
    environment.start()  # a second run of the setup cell, now in the course's folder
    assert course.user_path("jobs/x", "jobs/04_specs") == str(tmp_path / "jobs" / "x")


def test_setup_cell_on_colab_turns_a_failed_clone_into_one_sentence(tmp_path):
    """A stand-in `google.colab` makes the cell take its Colab path; the repository URL comes
    from CENSUS_COURSE_REPO, here one that does not exist."""
    (tmp_path / "standin" / "google" / "colab").mkdir(parents=True)
    (tmp_path / "standin" / "google" / "colab" / "__init__.py").write_text("")
    (tmp_path / "content").mkdir()
    cell = tmp_path / "setup.py"
    cell.write_text(sync.setup_source("01_data"))
    missing = (tmp_path / "no-such-repo").as_uri()
    done = subprocess.run([sys.executable, str(cell)], cwd=tmp_path / "content",
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path / "standin"),
                                   **{chapters.REPO_VARIABLE: missing}))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"Could not clone {missing} (") and chapters.REPO_VARIABLE in line
    assert list((tmp_path / "content").iterdir()) == []


def test_course_files_are_found_by_variable_package_or_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(environment.ROOT_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    assert environment.root() == REPO  # this package's own checkout (an editable install)
    monkeypatch.setenv(environment.ROOT_VARIABLE, str(tmp_path))
    with pytest.raises(environment.CourseNotFound, match="holds no course"):
        environment.root()
    monkeypatch.setenv(environment.ROOT_VARIABLE, str(REPO))
    assert environment.root() == REPO


def test_scrub_keeps_outputs_and_drops_run_metadata():
    nb = nbformat.v4.new_notebook(metadata={"papermill": {"x": 1}, "widgets": {}})
    nb.cells = [nbformat.v4.new_code_cell("1", execution_count=7,
                                          metadata={"papermill": {}, "execution": {}}),
                nbformat.v4.new_code_cell("P = 1", metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("2", execution_count=9, metadata={"tags": ["a"]},
                                          outputs=[nbformat.v4.new_output(
                                              "execute_result", {"text/plain": "2"},
                                              execution_count=9)])]
    nb = runner.scrub(nb)
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert [c.execution_count for c in nb.cells] == [1, 2]
    assert nb.cells[1].outputs[0].execution_count == 2
    assert nb.cells[0].metadata == {} and nb.cells[1].metadata == {"tags": ["a"]}


def test_scrub_shows_printed_machine_paths_relative_and_leaves_urls_alone():
    warning = (f"WARNING: From {REPO}/.venv/lib/python3.11/site-packages/tf/tool.py:735: load "
               "is deprecated\nserving at http://127.0.0.1:8501/v1/models/census\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("!tool", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=warning)])])
    text = runner.scrub(nb).cells[0].outputs[0].text
    assert not MACHINE_PATH.search(text), text
    assert "From .venv/lib/python3.11/site-packages/tf/tool.py:735" in text
    assert "http://127.0.0.1:8501/v1/models/census" in text


def test_helpers_show_no_machine_paths(tmp_path):
    assert notebook.rel(REPO / "jobs" / "x") == "jobs/x"
    assert notebook.rel(Path.home() / ".cache" / "census") == "~/.cache/census"
    assert not MACHINE_PATH.search(notebook.tidy(f"see {REPO}/jobs/a and {Path.home()}/b"))


def test_a_fresh_job_dir_never_empties_a_learners_own_folder(tmp_path):
    """A JOB_DIR pointed at a folder of one's own (".", where the kernel started) loses
    nothing; a folder fresh_dir made, or an empty one, is emptied again."""
    (tmp_path / "mine" / "notes.txt").parent.mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match=r"mine holds files this course did not write"):
        course.fresh_dir(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    job = course.fresh_dir(tmp_path / "job")
    Path(job, "old.csv").write_text("a run's file")
    assert list(Path(course.fresh_dir(job)).iterdir()) == [Path(job, notebook.JOB_MARK)]
    assert course.tree(job) == f"{notebook.rel(job)}/"


@pytest.mark.parametrize("parts", [("ci", "checkout", "main"), ("builds", "census-course")])
def test_a_machine_path_is_one_wherever_the_clone_lives(monkeypatch, parts):
    """A clone outside the usual folders (CI's failed the scrub check's test): the clone and
    the folder beside it (where ../shared is) are machine paths there too."""
    clone = Path("/", *parts).as_posix()
    monkeypatch.setattr(notebook, "root", lambda: Path(clone))
    found = notebook._machine_path_pattern().search
    assert found(f"saved to {clone}/jobs/x").group(0) == f"{clone}/"
    assert found(f"reading {Path(clone).parent}/shared/data/census/uci/adult.data")
    assert found(f"home {Path.home()}/x") and found("C:\\\\Users\\\\me")
    assert not found(f"https://example.com{clone}/jobs/x")
    assert not found(f"see {Path(clone).name}/jobs/x")


# --- every chapter, once, in smoke mode: nbval runs it and checks its deterministic cells ------

@pytest.mark.parametrize("name", chapters.NAMES)
@pytest.mark.slow
def test_chapter_runs_in_smoke_mode(name, smoke_run):
    """Every cell runs, and the cells tagged nbval-check-output print what is committed."""
    assert smoke_run()[name] == "", smoke_run()[name]


@pytest.mark.slow
def test_the_smoke_run_as_a_whole(smoke_run):
    for name in chapters.NAMES:
        checked = [c for c in read(name).cells
                   if "nbval-check-output" in c.metadata.get("tags", [])]
        assert checked and all(c.outputs for c in checked), f"{name}: committed outputs to check"
    assert smoke_run()["nbval"] == ""
    results = json.loads((REPO / SMOKE_ROOT / "04_specs" / chapters.RESULTS_FILE).read_text())
    assert results["wide_and_deep"]["global_step"] > 0
    # Both models scored on validation (chosen there) and on the test split (once, at the end).
    for model in ("wide_and_deep", "lightgbm"):
        assert set(results[model]) >= {"validation", "test"}, results[model]
    assert results["lightgbm"]["validation"]["auc"] > 0.9
    assert results["export"].startswith(f"{SMOKE_ROOT}/04_specs/export/census/")
    # With chapter 4 run first, chapters 6 and 10 use its export instead of training one.
    assert not (REPO / SMOKE_ROOT / "06_saved_model_cli" / "export").exists()
    assert not (REPO / SMOKE_ROOT / "10_batch_prediction" / "model").exists()


@pytest.mark.slow
def test_papermill_runs_a_chapter_from_another_folder(uci_dir, tmp_path):
    """The README's papermill command, typed in a folder outside the checkout, with --cwd
    naming a third: the setup cell finds the course; the job dir the user passed is taken from
    --cwd, where the kernel started (papermill#55), not from the course's folder, where the
    setup cell moves; no machine path is shown."""
    out = tmp_path / "out" / "01_data.ipynb"
    out.parent.mkdir()
    typed_in, kernel_in = tmp_path / "typed_in", tmp_path / "kernel_in"
    typed_in.mkdir(), kernel_in.mkdir()
    done = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOKS / "01_data.ipynb"),
                           str(out), "-p", "QUICK", "True", "-p", "JOB_DIR", "jobs/x", "--cwd",
                           str(kernel_in), "--no-progress-bar"],
                          cwd=typed_in, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, CENSUS_DATA_DIR=str(uci_dir),
                                   CENSUS_CACHE_DIR=str(tmp_path / "cache")))
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(typed_in.iterdir()) == [] and not (REPO / "jobs" / "x").exists()
    assert (kernel_in / "jobs" / "x" / "cleaning_report.txt").is_file()
    nb = nbformat.read(out, as_version=4)
    outputs = "\n".join(runner.output_text(o) for c in nb.cells if c.cell_type == "code"
                        for o in c.outputs)
    assert "32,561" in outputs and not MACHINE_PATH.search(outputs), MACHINE_PATH.search(outputs)


@pytest.mark.slow
def test_tensorboard_command_from_chapter_4_serves_the_logs(smoke_run):
    """The command chapter 4 tells the reader to type, on the smoke run's logs."""
    smoke_run()
    logs = REPO / SMOKE_ROOT / "04_specs" / "logs"
    text = "\n".join(c.source for c in read("04_specs").cells if c.cell_type == "markdown")
    command = re.search(r"^tensorboard --logdir (\S+) --host 127\.0\.0\.1 --port (\d+)$",
                        text, re.M)
    assert command and command.group(1) == "jobs/04_specs/logs"
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    with served([str(tensorboard), "--logdir", str(logs), "--host", "127.0.0.1",
                 "--port", str(port)]) as process:
        wait_for(f"http://127.0.0.1:{port}/data/runs", process)
        runs = json.loads(get(f"http://127.0.0.1:{port}/data/runs"))
    assert {"train", "validation"} <= set(runs)


# --- JupyterLab ---------------------------------------------------------------------------

@pytest.mark.slow
def test_jupyterlab_lists_and_opens_the_notebooks(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    command = course_cli.lab_command(port, [
        "--no-browser", f"--IdentityProvider.token={token}",
        "--ServerApp.shutdown_no_activity_timeout=120",  # stops by itself if left behind
        "--MappingKernelManager.cull_idle_timeout=60"])
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"), IPYTHONDIR=str(tmp_path / "ipython"))
    base = f"http://127.0.0.1:{port}"
    with served(command, env) as process:
        wait_for(f"{base}/api/status?token={token}", process)
        listing = json.loads(get(f"{base}/api/contents/notebooks?token={token}"))
        names = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
        assert {f"{n}.ipynb" for n in chapters.NAMES} <= set(names)
        for name in chapters.NAMES:
            model = json.loads(get(f"{base}/api/contents/notebooks/{name}.ipynb?token={token}"))
            assert model["type"] == "notebook" and model["content"]["cells"]
        page = get(f"{base}/lab/tree/notebooks/{chapters.NAMES[0]}.ipynb?token={token}")
        assert "JupyterLab" in page or "jupyter-config-data" in page


# --- helpers ------------------------------------------------------------------------------

def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_for(url, process, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}")
        try:
            get(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"no answer from {url} within {seconds} s")


class served:
    """Start a server process; on exit terminate it (kill after 10 s) and reap it."""

    def __init__(self, command, env=None):
        self.command, self.env = command, env

    def __enter__(self):
        self.process = subprocess.Popen(self.command, cwd=REPO, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.process

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
