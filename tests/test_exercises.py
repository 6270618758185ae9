"""Classroom exercises: exercises/ is exactly what nbgrader's preprocessors make of solutions/,
every solution passes its checks, every exercise notebook fails only at its checks, and the
grader restores checks, runs hidden tests and reports."""
import copy
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from census.course import chapters, checks, environment, exercises, runner, sync
from test_notebooks import MACHINE_PATH

pytestmark = pytest.mark.slow  # every solution and exercise notebook, graded

SOLUTIONS, EXERCISES = exercises.solutions(), exercises.exercises_dir()


def read(folder, name):
    return exercises.read(folder / f"{name}.ipynb")


def test_every_chapter_has_its_twins():
    for folder in (SOLUTIONS, EXERCISES):
        assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(chapters.NAMES), folder


def test_exercises_are_regenerated_exactly():
    assert exercises.stale() == [], "run `make exercises`"
    done = subprocess.run([sys.executable, "-m", "census", "exercises", "check"],
                          cwd=environment.root(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "matches" in done.stdout, done.stderr


def test_make_writes_the_exercises_once(tmp_path, monkeypatch):
    monkeypatch.setattr(exercises, "exercises_dir", lambda: tmp_path / "exercises")
    assert exercises.make() == list(chapters.NAMES)
    for name in chapters.NAMES:
        assert (tmp_path / "exercises" / f"{name}.ipynb").read_text() == \
            (EXERCISES / f"{name}.ipynb").read_text()
    assert exercises.make() == []


def test_a_broken_solution_region_is_named(tmp_path, monkeypatch):
    nb = read(SOLUTIONS, "01_data")
    answer = next(filter(exercises.is_answer, nb.cells))
    answer.source = answer.source.replace("### END SOLUTION", "")
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "01_data.ipynb")
    monkeypatch.setattr(exercises, "solutions", lambda: tmp_path / "solutions")
    with pytest.raises(ValueError, match=r"01_data\.ipynb: no end solution statement found"):
        exercises.stale(["01_data"])


@pytest.mark.parametrize("name", chapters.NAMES)
def test_solution_format(name):
    """Title and badge, setup and parameters cells, 2–4 exercises numbered N.1, N.2, … each an
    answer cell (a function, nbgrader solution region) then its locked check cell."""
    nb, n = read(SOLUTIONS, name), chapters.NAMES.index(name) + 1
    nbformat.validate(nb)
    first = nb.cells[0].source
    assert first.startswith(f"# Exercises — Chapter {n}: ")
    assert chapters.badge(name, "solutions") in first
    assert f"(../notebooks/{name}.ipynb)" in first
    assert nb.cells[sync.setup_cell_index(nb)].source == sync.setup_source(name)
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "QUICK = False" in parameters[0].source
    assert "JOB_DIR = None" in parameters[0].source
    paths = nb.cells[nb.cells.index(parameters[0]) + 1]  # after papermill's injected values
    assert f'JOB_DIR = course.user_path(JOB_DIR, "jobs/exercises/{name}")' in paths.source
    answers = [i for i, c in enumerate(nb.cells) if exercises.is_answer(c)]
    assert 2 <= len(answers) <= 4
    for k, i in enumerate(answers, 1):
        statement, answer, check = nb.cells[i - 1], nb.cells[i], nb.cells[i + 1]
        assert statement.source.startswith(f"## Exercise {n}.{k} — ")
        assert exercises.grading(answer)["grade_id"] == f"ex{n}-{k}"
        assert re.search(r"^def \w+\(", answer.source, re.M), "each exercise is a function"
        assert re.search(r"^    ### BEGIN SOLUTION$.+^    ### END SOLUTION$", answer.source,
                         re.M | re.S), "the answer is the function's body"
        assert exercises.is_check(check) and exercises.grading(check)["locked"]
        assert exercises.grading(check)["grade_id"] == f"ex{n}-{k}-check"
        assert check.source.startswith("checks.check_")
    for cell in nb.cells:
        assert not MACHINE_PATH.search(cell.source)
    if n < len(chapters.NAMES):
        assert f"({chapters.NAMES[n]}.ipynb)" in nb.cells[-1].source, "point to the next exercises"


@pytest.mark.parametrize("name", chapters.NAMES)
def test_solution_carries_the_outputs_of_a_run(name):
    """A learner sees what each passing check prints: solutions/ is committed as
    `census exercises outputs` writes it (a full run, scrubbed as the chapters are), every
    check cell ending in its ✓ line."""
    path = SOLUTIONS / f"{name}.ipynb"
    assert runner.unscrubbed(path) == [], "run `make solution-outputs` (or `census exercises " \
        f"outputs --chapters {name}`)"
    for cell in filter(exercises.is_check, read(SOLUTIONS, name).cells):
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert any(line.startswith("✓ ") for line in text.splitlines()), cell.source


def test_outputs_never_reach_the_exercises():
    """A solution's outputs, execution counts and output metadata are cleared in the exercise
    made from it (nbconvert's ClearOutput): the same exercise as from the bare solution."""
    name = chapters.NAMES[0]
    nb = read(SOLUTIONS, name)
    for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", text=f"✓ cell {count}\n"),
                        nbformat.v4.new_output("execute_result", {"text/plain": "1"},
                                               execution_count=count)]
        cell.metadata["scrolled"] = True
    assert exercises.render(exercises.generate(nb, name)) == \
        (EXERCISES / f"{name}.ipynb").read_text()


@pytest.mark.parametrize("name", chapters.NAMES)
def test_exercise_holds_stubs_not_answers(name):
    nb = read(EXERCISES, name)
    for cell in nb.cells:
        assert cell.cell_type == "markdown" or (cell.outputs == []
                                                and cell.execution_count is None)
    assert chapters.badge(name, "exercises") in nb.cells[0].source
    text = "\n".join(c.source for c in nb.cells)
    assert "### BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    for cell in filter(exercises.is_answer, nb.cells):
        assert "    # YOUR CODE HERE\n    raise NotImplementedError()" in cell.source


def test_nbgrader_takes_the_solutions_as_they_are(raw_dir, tmp_path):
    """Instructors who use nbgrader can take solutions/ as their source notebooks:
    generate_assignment gives our exercises, autograde scores the checks (hidden tests
    included). The course directory lies outside the checkout: the notebooks find the
    course from the installed package."""
    name, root = chapters.NAMES[0], tmp_path / "nbgrader-course"
    for folder in ("source/census", "submitted/alice/census", "submitted/bob/census"):
        (root / folder).mkdir(parents=True)
    shutil.copy(SOLUTIONS / f"{name}.ipynb", root / "source" / "census")
    shutil.copy(SOLUTIONS / f"{name}.ipynb", root / "submitted" / "alice" / "census")
    shutil.copy(EXERCISES / f"{name}.ipynb", root / "submitted" / "bob" / "census")
    env = dict(os.environ, CENSUS_DATA_DIR=str(raw_dir),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    for command in (["db", "assignment", "add", "census"], ["generate_assignment", "census"],
                    ["autograde", "census", "--create"]):
        done = subprocess.run([sys.executable, "-m", "nbgrader", *command,
                               f"--CourseDirectory.root={root}"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    released = exercises.read(root / "release" / "census" / f"{name}.ipynb")
    badge = (chapters.badge(name, "solutions"), chapters.badge(name, "exercises"))
    assert ([c.source.replace(*badge) for c in released.cells] ==
            [c.source for c in read(EXERCISES, name).cells])
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission("census", s).score for s in ("alice", "bob")}
    checks = sum(map(exercises.is_check, read(SOLUTIONS, name).cells))
    assert scores == {"alice": checks, "bob": 0}


def test_every_check_is_used_and_fed_a_wrong_answer():
    """Each check of census.course.checks serves an exercise, and a test feeds it a wrong answer
    (tests/test_checks_*.py: `fails(checks.NAME, wrong_answer, …)`, then its hint)."""
    notebooks = "\n".join(c.source for name in chapters.NAMES for c in read(SOLUTIONS, name).cells)
    tests = "\n".join(p.read_text()
                      for p in (environment.root() / "tests").glob("test_checks_*.py"))
    for name in (n for n in checks.__all__ if n.startswith("check_")):
        assert f"checks.{name}(" in notebooks, f"{name} is used by no exercise"
        assert re.search(rf"\bfails\(checks\.{name}\b", tests), f"no wrong answer for {name}"


# --- every notebook, run as the grader runs it ------------------------------------------------

@pytest.mark.parametrize("name", chapters.NAMES)
def test_solution_passes_every_check(graded, name):
    result = graded()["solutions", name]
    assert result.other_errors == [], result.other_errors
    statuses = {e: s for e, (s, _) in result.checks.items()}
    assert statuses == dict.fromkeys(result.checks, "passed"), result.checks
    assert all(m.startswith("✓ ") for _, m in result.checks.values())
    executed = exercises.read(environment.root() / result.notebook)
    text = "\n".join(o.get("text", "") for c in executed.cells if c.cell_type == "code"
                     for o in c.outputs)
    assert not MACHINE_PATH.search(text), MACHINE_PATH.search(text)


@pytest.mark.parametrize("name", chapters.NAMES)
def test_exercise_fails_only_at_its_checks(graded, name):
    """No exercise is broken before the learner starts: every cell runs, and each check says
    'not answered yet' (the stub's NotImplementedError) and nothing else."""
    result = graded()["exercises", name]
    assert result.other_errors == [], result.other_errors
    for exercise, (status, message) in result.checks.items():
        assert status == "not answered", (exercise, message)
        assert "still raises NotImplementedError" in message


# --- solutions/ with their outputs ----------------------------------------------------------

def test_solution_outputs_are_written_scrubbed_or_not_at_all(raw_dir, tmp_path, monkeypatch):
    """`census exercises outputs` runs a solution as a learner would and writes it back with
    its outputs, scrubbed, nbgrader's metadata kept, its exercise unchanged; a solution that
    fails a check stops the command, named, and keeps its committed file."""
    name, folder = chapters.NAMES[0], tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(SOLUTIONS / f"{name}.ipynb", folder)
    monkeypatch.setattr(exercises, "solutions", lambda: folder)
    monkeypatch.setenv("CENSUS_DATA_DIR", str(raw_dir))
    monkeypatch.setenv("CENSUS_CACHE_DIR", str(tmp_path / "cache"))
    run = dict(smoke=True, job_root="jobs/test-solution-outputs",
               build_dir="build/test-solution-outputs", echo=lambda line: None)
    assert list(exercises.write_outputs([name], **run)) == [name]
    written = read(folder, name)
    assert runner.unscrubbed(folder / f"{name}.ipynb") == []
    assert ([exercises.grading(c) for c in written.cells] ==
            [exercises.grading(c) for c in read(SOLUTIONS, name).cells])
    for cell in filter(exercises.is_check, written.cells):
        assert cell.outputs[-1].text.startswith("✓ "), cell.outputs
    assert (exercises.render(exercises.generate(written, name)) ==
            (EXERCISES / f"{name}.ipynb").read_text())
    nbformat.write(submission(name, [("ascending=False)\n", "ascending=True)\n")]),
                   folder / f"{name}.ipynb")
    before = (folder / f"{name}.ipynb").read_text()
    with pytest.raises(RuntimeError, match=rf"^{name}: a cell failed \(CheckFailed: the "
                       "values are not sorted, highest first Hint: "):
        exercises.write_outputs([name], **run)
    assert (folder / f"{name}.ipynb").read_text() == before


# --- grading a class ------------------------------------------------------------------------

def submission(name, edits=(), drop_check=None):
    """A copy of a solution with (old, new) source edits, and maybe one check cell deleted."""
    nb = copy.deepcopy(read(SOLUTIONS, name))
    for old, new in edits:
        cells = [c for c in nb.cells if old in c.source]
        assert len(cells) == 1, old
        cells[0].source = cells[0].source.replace(old, new)
    nb.cells = [c for c in nb.cells
                if exercises.grading(c).get("grade_id") != f"ex{drop_check}-check"]
    return nb


def test_grading_a_class_restores_checks_runs_hidden_tests_and_reports(uci_dir, tmp_path):
    """The README's command on a folder with one folder per learner."""
    name = "01_data"
    alice = submission(name, [
        ("skiprows=1 if note else 0", "skiprows=1"),  # right for adult.test only
        ("ascending=False)\n", "ascending=True)\n"),  # a wrong answer
        ("checks.check_split_validation(split_validation, train, share=0.1, seed=2017)",
         "pass"),  # tampered with
    ])
    bob = submission(name, drop_check="1-2")
    # a learner's own cells with nbgrader metadata that is none of ours
    bob.cells.insert(3, nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": "edited"}))
    bob.cells.insert(3, nbformat.v4.new_code_cell("y = 2", metadata={
        "nbgrader": {"grade": True, "grade_id": "cell-1a2b", "points": 1}}))
    for learner in ("alice", "bob"):
        (tmp_path / "class" / learner).mkdir(parents=True)
    nbformat.write(alice, tmp_path / "class" / "alice" / f"{name}.ipynb")
    # Bob's browser saved his second download beside the first: the newer one is graded.
    nbformat.write(submission(name), tmp_path / "class" / "bob" / f"{name}.ipynb")
    os.utime(tmp_path / "class" / "bob" / f"{name}.ipynb", (1e9, 1e9))
    nbformat.write(bob, tmp_path / "class" / "bob" / f"{name} (1).ipynb")
    (tmp_path / "class" / "carol").mkdir()
    (tmp_path / "class" / "carol" / f"{name}.ipynb").write_text('{"cells": [')  # a broken save
    (tmp_path / "class" / "carol" / "notes.ipynb").write_text("{}")  # not a chapter's
    out = tmp_path / "grading"
    done = subprocess.run(
        [sys.executable, "-m", "census", "exercises", "grade", str(tmp_path / "class"),
         "--smoke", "--jobs", "2", "--out-dir", str(out), "--job-root", "jobs/test-grading-class"],
        cwd=environment.root(), env=dict(os.environ, CENSUS_DATA_DIR=str(uci_dir),
                                  CENSUS_CACHE_DIR=str(tmp_path / "cache")),
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "grades.csv") as f:
        grades = {(r["student"], r["exercise"]): (r["status"], r["message"])
                  for r in csv.DictReader(f)}
    assert len(grades) == 11
    assert grades["carol", "1.1"] == ("failed", "the notebook could not be read")
    assert grades["carol", ""] == ("not graded", "its name names no chapter; name submissions "
                                   "like the exercises (01_data.ipynb, 02_estimator.ipynb, …)")
    assert grades["bob", ""] == ("not graded", "an older copy of 01_data than "
                                 "'01_data (1).ipynb', which was graded")
    assert grades["alice", "1.1"][0] == "failed"  # the hidden test reads adult.data
    assert "rows instead of" in grades["alice", "1.1"][1]
    assert grades["alice", "1.2"] == ("failed", "✗ Not right yet: the values are not sorted, "
                                      "highest first Hint: the highest share should come first: "
                                      "a Series can be ordered by its values")  # the first hint
    assert grades["alice", "1.3"][0] == "passed"  # the check ran as written, not as `pass`
    assert grades["bob", "1.2"] == ("missing", "the check cell was deleted")
    assert grades["bob", "1.1"][0] == grades["bob", "1.3"][0] == "passed"
    report = done.stdout
    assert re.search(r"^alice +01_data +1\.1 ✗  1\.2 ✗  1\.3 ✓   1/3$", report, re.M), report
    assert re.search(r"^bob +01_data +1\.1 ✓  1\.2 \?  1\.3 ✓   2/3$", report, re.M), report
    assert "alice/01_data 1.2: ✗ Not right yet: the values are not sorted" in report
    assert re.search(r"^carol +01_data +1\.1 ✗  1\.2 ✗  1\.3 ✗   0/3$", report, re.M), report
    assert "carol/01_data file: not a readable notebook" in report
    assert re.search(r"^carol +notes.ipynb +not graded$", report, re.M), report
    assert "carol/notes.ipynb not graded: its name names no chapter" in report
    assert (out / "alice" / f"{name}.ipynb").is_file()


def test_grading_reports_each_bad_submission_and_grades_the_others(tmp_path):
    """Nothing here needs a run: a folder that does not exist is the instructor's typo (one
    sentence); a notebook named after no chapter is reported and the grades are written."""
    missing = subprocess.run([sys.executable, "-m", "census", "exercises", "grade",
                              str(tmp_path / "missing")], cwd=environment.root(),
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
    (tmp_path / "class" / "ada").mkdir(parents=True)
    (tmp_path / "class" / "ada" / "notes.ipynb").write_text("{}")
    done = subprocess.run([sys.executable, "-m", "census", "exercises", "grade", "class",
                           "--out-dir", "grading"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "ada/notes.ipynb not graded: its name names no chapter" in done.stdout
    with open(tmp_path / "grading" / "grades.csv") as f:  # where the instructor asked
        [row] = csv.DictReader(f)
    assert (row["student"], row["chapter"], row["status"]) == ("ada", "notes.ipynb", "not graded")


@pytest.mark.parametrize("name", ["01_data (1).ipynb", "Copy of 01_data.ipynb",
                                  "01_Data-Copy1.ipynb", "01_data.ipynb"])
def test_a_copy_of_a_chapter_is_that_chapter(name):
    assert exercises.chapter_of(Path(name)) == "01_data"


@pytest.mark.parametrize("name", ["notes.ipynb", "01_data and 02_estimator.ipynb", "01.ipynb"])
def test_a_name_naming_no_chapter_or_two_is_none(name):
    assert exercises.chapter_of(Path(name)) is None
