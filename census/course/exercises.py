"""Classroom exercises: `exercises/` is generated from `solutions/`, and submissions are graded.

    census exercises make                   write exercises/ from solutions/ (`make exercises`)
    census exercises check                  exit 1 if exercises/ is out of date
    census exercises grade FOLDER… [--smoke] [--jobs 2]   run every submission's checks
    census exercises outputs [--chapters …] [--smoke]   run solutions/, write their outputs back

The solutions are the one source. An exercise is an answer cell, whose answer sits between
nbgrader's `### BEGIN SOLUTION` and `### END SOLUTION` markers, then a locked check cell that
calls `census.course.checks` (and may hide more calls between `### BEGIN HIDDEN TESTS` and
`### END HIDDEN TESTS`). Both carry nbgrader's cell metadata, and the exercises are made by
nbgrader's own preprocessors, so `nbgrader generate_assignment` and `nbgrader autograde` work
on these notebooks as they are.
"""
import copy
import csv
import dataclasses
import os
import re
import time
from pathlib import Path

from census.course.chapters import NAMES, badge
from census.course.environment import root
from census.course.notebook import rel


def solutions():
    """The solutions/ folder of the course."""
    return root() / "solutions"


def exercises_dir():
    """The exercises/ folder of the course."""
    return root() / "exercises"


CELL_TIMEOUT = 900  # seconds: a learner's endless loop stops the notebook, not the grading
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read(path):
    """A notebook file, as nbformat version 4."""
    import nbformat
    return nbformat.read(path, as_version=4)


def render(nb):
    """A notebook as the exact text written to disk."""
    import nbformat
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def grading(cell):
    """A cell's nbgrader metadata ({} if none, or if a learner's edit left no mapping)."""
    value = cell.metadata.get("nbgrader")
    return value if isinstance(value, dict) else {}


def is_answer(cell):
    """Whether a cell is an exercise's answer (an nbgrader solution cell)."""
    return bool(grading(cell).get("solution"))


def is_check(cell):
    """Whether a cell is an exercise's check (an nbgrader graded cell)."""
    return bool(grading(cell).get("grade"))


def exercise_id(cell):
    """'3.1' for the cells 'ex3-1' (answer) and 'ex3-1-check' (its check)."""
    return re.match(r"ex(\d+)-(\d+)", grading(cell)["grade_id"]).expand(r"\1.\2")


# --- exercises/ from solutions/ -------------------------------------------------------------

def generate(solution, name):
    """The exercise notebook of a solution notebook: answers replaced by nbgrader's stub
    (`# YOUR CODE HERE` / `raise NotImplementedError()`), hidden tests removed, outputs
    cleared, the Colab badge pointing at exercises/."""
    from nbconvert.preprocessors import ClearOutputPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
    nb, resources = copy.deepcopy(solution), {}
    for step in (ClearSolutions(), ClearHiddenTests(), ClearOutputPreprocessor()):
        nb, resources = step.preprocess(nb, resources)
    nb.cells[0].source = nb.cells[0].source.replace(
        badge(name, "solutions"), badge(name, "exercises"))
    return nb


def changes(names=NAMES):
    """{name: exercise text} for the chapters whose committed exercise notebook differs from
    the one generated from its solution."""
    out = {}
    for name in names:
        target, source = exercises_dir() / f"{name}.ipynb", solutions() / f"{name}.ipynb"
        if not source.is_file():
            raise FileNotFoundError(f"no {rel(source)}: every chapter needs its solutions")
        try:
            text = render(generate(read(source), name))
        except RuntimeError as error:  # nbgrader's words for a broken region (no END SOLUTION…)
            raise ValueError(f"{rel(source)}: {error}") from None
        if not target.is_file() or target.read_text() != text:
            out[name] = text
    return out


def stale(names=NAMES):
    """The chapters whose exercise notebook is out of date."""
    return list(changes(names))


def make(names=NAMES):
    """Write exercises/NAME.ipynb for every solution; return the names that changed."""
    exercises_dir().mkdir(exist_ok=True)
    written = changes(names)
    for name, text in written.items():
        (exercises_dir() / f"{name}.ipynb").write_text(text)
    return list(written)


# --- solutions/ with the outputs of a run --------------------------------------------------

def write_outputs(names=NAMES, smoke=False, job_root="jobs/exercises",
                  build_dir="build/solutions", echo=print):
    """`census exercises outputs`: run each solution from top to bottom as a learner would
    (papermill; the full settings unless `smoke`; JOB_DIR under `job_root`, by default the
    notebook's own, so that the paths it prints are a learner's), then write it back into
    solutions/ with its outputs, scrubbed as `make outputs` scrubs the chapters
    (`runner.scrub`: no run metadata, no machine paths, execution counts 1, 2, …), so that a
    learner sees what each passing check prints. The exercises stay output-free: `make`
    clears them. A solution whose run fails (a cell, or a check not passing) or leaves what
    `runner.unscrubbed` refuses keeps its committed file, and the command stops there:
    RuntimeError naming the problem (the executed copy stays in `build_dir`). Returns
    {name: seconds of its run}."""
    import papermill

    from census.course.runner import papermill_run, scrub, unscrubbed
    seconds = {}
    for name in names:
        source, executed = solutions() / f"{name}.ipynb", root() / build_dir / f"{name}.ipynb"
        executed.parent.mkdir(parents=True, exist_ok=True)
        echo(f"[outputs] {name} ({'smoke' if smoke else 'full'}) ...")
        start = time.perf_counter()
        try:
            papermill_run(source, executed, {"QUICK": smoke,
                                             "JOB_DIR": str(root() / job_root / name)},
                          solutions(), execution_timeout=CELL_TIMEOUT)
        except papermill.PapermillExecutionError as error:
            why = " ".join(ANSI.sub("", f"{error.ename}: {error.evalue}").split())
            raise RuntimeError(f"{name}: a cell failed ({why}); its run is in "
                               f"{rel(executed)}") from None
        seconds[name] = time.perf_counter() - start
        scrubbed = scrub(read(executed))
        result = outcome(scrubbed, read(source), "solutions", name, rel(executed))
        wrong = [f"{e}: {m}" for e, (status, m) in result.checks.items() if status != "passed"]
        if wrong or result.other_errors:
            raise RuntimeError(f"{name}: " + "; ".join(wrong + [f"{w}: {m}" for w, m in
                                                               result.other_errors]))
        candidate = executed.with_suffix(".scrubbed.ipynb")
        candidate.write_text(render(scrubbed))
        if problems := unscrubbed(candidate):
            raise RuntimeError(f"{name}: " + "; ".join(problems))
        source.write_text(candidate.read_text())
        echo(f"[outputs] {name}: {result.score}/{len(result.checks)} checks passed, "
             f"written in {seconds[name]:.0f} s")
    return seconds


# --- grading --------------------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    """One submission: each exercise's status and message, and errors outside the checks. A
    submission that could not be graded at all has no checks, and says why in other_errors."""
    student: str
    chapter: str
    checks: dict  # exercise id -> (status, message); passed | failed | not answered | missing
    other_errors: list  # (where, message): cells that failed outside the checks, or the run
    notebook: str  # the executed copy (the submission itself if not graded), relative
    seconds: float = 0.0  # wall time of the run

    @property
    def score(self):
        """The number of checks passed."""
        return sum(status == "passed" for status, _ in self.checks.values())

    @property
    def graded(self):
        """Whether the submission was run and its checks read (else other_errors says why)."""
        return bool(self.checks)


def restore_checks(submission, source):
    """nbgrader's rule: check cells run as the instructor wrote them (hidden tests included),
    whatever the learner did to them; a deleted check stays missing."""
    originals = {grading(c)["grade_id"]: c.source for c in source.cells if is_check(c)}
    for cell in submission.cells:
        if is_check(cell) and grading(cell).get("grade_id") in originals:
            cell.source = originals[grading(cell)["grade_id"]]
    return submission


def error_message(output):
    """A failed check's two lines (problem and hint), or the error's type and text."""
    lines = [ANSI.sub("", line) for line in output.get("traceback", [])]
    text = [line.strip() for line in lines if line.strip().startswith(("✗", "Hint:"))]
    return " ".join(text) or f"{output.ename}: {output.evalue}"


def outcome(executed, source, student, chapter, notebook):
    """Read the checks' verdicts off an executed notebook."""
    ids = {grading(c)["grade_id"]: exercise_id(c) for c in source.cells if is_check(c)}
    checks = {e: ("missing", "the check cell was deleted") for e in ids.values()}
    other = []
    for number, cell in enumerate(executed.cells, 1):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if grading(cell).get("grade_id") in ids:  # a check of ours, not a learner's own cell
            exercise = ids[grading(cell)["grade_id"]]
            if errors:
                status = "not answered" if errors[0].ename == "NotAnswered" else "failed"
                checks[exercise] = (status, error_message(errors[0]))
            elif cell.execution_count is None:
                checks[exercise] = ("failed", "the notebook stopped before this check")
            else:
                text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
                done = [line for line in text.splitlines() if line.startswith("✓")]
                checks[exercise] = ("passed", done[-1] if done else "✓")
        elif errors:
            other.append((f"cell {number}", error_message(errors[0])))
    return Result(student, chapter, checks, other, notebook)


def grade_one(path, student, chapter, smoke=False, job_root="jobs/grading",
              out_dir="build/grading"):
    """Execute one submission (checks restored, every cell run even after a failure) into
    out_dir/student/chapter.ipynb and return its Result."""
    import nbformat
    import papermill

    from census.course.runner import papermill_run
    source = read(solutions() / f"{chapter}.ipynb")
    executed = root() / out_dir / student / f"{chapter}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        submitted = read(path)
    except Exception as error:  # not a notebook (a broken save, another format): say so
        checks = {exercise_id(c): ("failed", "the notebook could not be read")
                  for c in source.cells if is_check(c)}
        reason = f"not a readable notebook: {error}".splitlines()[0]
        return Result(student, chapter, checks, [("file", reason)], rel(path))
    nbformat.write(restore_checks(submitted, source), executed)
    stopped, start = None, time.perf_counter()
    try:
        papermill_run(executed, executed,
                      {"QUICK": smoke, "JOB_DIR": str(root() / job_root / student / chapter)},
                      exercises_dir(), allow_errors=True, execution_timeout=CELL_TIMEOUT)
    except papermill.PapermillExecutionError:
        pass  # with allow_errors, papermill still raises once every cell has run
    except Exception as error:  # a timeout or a dead kernel: grade what ran
        stopped = f"{type(error).__name__}: {error}"
    result = outcome(read(executed), source, student, chapter, rel(executed))
    result.seconds = time.perf_counter() - start
    if stopped:
        result.other_errors.append(("run", f"the notebook stopped: {stopped}"))
    return result


@dataclasses.dataclass
class Submission:
    """A notebook found in a folder of submissions, and why it cannot be graded (or None)."""
    path: Path
    student: str
    chapter: str  # the chapter it answers, or the file's name if it answers none
    problem: str | None = None

    def not_graded(self):
        """Its Result: no checks, and `problem` as the reason."""
        return Result(self.student, self.chapter, {}, [("not graded", self.problem)],
                      rel(self.path))


def chapter_of(path):
    """The chapter a submitted notebook answers: the one chapter name in its file name, in any
    case, as browsers and notebook apps save copies ("01_data (1).ipynb", "Copy of
    01_data.ipynb", "01_data-Copy1.ipynb"); None if it names no chapter or several."""
    named = [name for name in NAMES if name in path.stem.lower()]
    return named[0] if len(named) == 1 else None


def submissions(folders):
    """A Submission for every notebook under the folders; the student is the path of its folder
    below the one given (or that folder's name). A notebook naming no chapter, or an older copy
    of a chapter the same student submitted again, comes with its problem: the newest copy of
    each chapter is graded. Raises FileNotFoundError for a folder that does not exist."""
    found = {}
    for folder in map(Path, folders):
        if folder.is_file():
            paths, base = [folder], folder.parent.parent
        elif folder.is_dir():
            paths, base = sorted(folder.rglob("*.ipynb")), folder
        else:
            raise FileNotFoundError(f"no such file or folder: {folder}")
        for path in paths:
            if ".ipynb_checkpoints" in path.parts:
                continue
            student = path.parent.relative_to(base).as_posix()
            student = folder.name if student == "." else student
            found.setdefault((student, chapter_of(path) or path.name), []).append(path)
    work = []
    for (student, chapter), paths in found.items():
        if chapter not in NAMES:
            examples = ", ".join(f"{n}.ipynb" for n in NAMES[:2])
            work += [Submission(path, student, chapter, "its name names no chapter; name "
                                f"submissions like the exercises ({examples}, …)")
                     for path in paths]
            continue
        newest = max(paths, key=lambda p: (p.stat().st_mtime, p.stem == chapter))
        work.append(Submission(newest, student, chapter))
        work += [Submission(path, student, chapter, f"an older copy of {chapter} than "
                            f"{newest.name!r}, which was graded") for path in paths
                 if path != newest]
    return work


def grade(folders, smoke=False, job_root="jobs/grading", out_dir="build/grading", jobs=1,
          echo=print, env=None):
    """Grade every submission under the folders, `jobs` notebooks at a time; write
    out_dir/grades.csv and return the Results in submission order. A submission that cannot be
    graded (not named after a chapter, an older copy, a run that breaks the grader) is
    reported as such; the others are graded all the same. `env`: environment variables to set
    in the grading processes (and so in the notebooks' kernels), this process's left as is."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    work = submissions(folders)
    echo(f"[grade] {len(work)} notebook(s), {jobs} at a time{' (smoke)' if smoke else ''}")
    with ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_set_environment, initargs=(dict(env or {}),)) as pool:
        futures = [None if s.problem else
                   pool.submit(grade_one, s.path, s.student, s.chapter, smoke, job_root, out_dir)
                   for s in work]
        results = []
        for submission, future in zip(work, futures, strict=True):
            try:
                r = future.result() if future else submission.not_graded()
            except Exception as error:  # the grader's own process failed on this one
                why = (str(error).splitlines() or [""])[0]
                submission.problem = (f"the grader failed on it ({type(error).__name__}"
                                      + (f": {why})" if why else ")"))
                r = submission.not_graded()
            echo(f"[grade] {r.student}/{r.chapter}: " + (
                f"{r.score}/{len(r.checks)} passed ({r.seconds:.0f} s)" if r.graded
                else f"not graded ({submission.problem})"))
            results.append(r)
    write_csv(results, root() / out_dir / "grades.csv")
    return results


def _set_environment(variables):
    """What a grading process does first: set `variables` (dict) in its environment."""
    os.environ.update(variables)


def write_csv(results, path):
    """`results` as a CSV file at `path`: learner, chapter, exercise, status, message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["student", "chapter", "exercise", "status", "message"])
        for r in results:
            for exercise, (status, message) in r.checks.items():
                out.writerow([r.student, r.chapter, exercise, status, message])
            if not r.graded:
                out.writerow([r.student, r.chapter, "", "not graded", r.other_errors[0][1]])


def report(results):
    """A table (one row per submission, ✓/✗/– per exercise), then what failed and why."""
    marks = {"passed": "✓", "failed": "✗", "not answered": "–", "missing": "?"}
    width = max([len(r.student) for r in results] + [7])
    lines = []
    for r in results:
        cells = "  ".join(f"{e} {marks[s]}" for e, (s, _) in r.checks.items())
        lines.append(f"{r.student:<{width}}  {r.chapter:<24}  " +
                     (f"{cells}   {r.score}/{len(r.checks)}" if r.graded else "not graded"))
    details = [f"  {r.student}/{r.chapter} {e}: {m}" for r in results
               for e, (s, m) in r.checks.items() if s in ("failed", "missing")]
    details += [f"  {r.student}/{r.chapter} {where}: {m}" for r in results
                for where, m in r.other_errors]
    lines += ["", "✓ passed  ✗ wrong  – not answered  ? check cell deleted"]
    if details:
        lines += ["", "What went wrong:", *details]
    return "\n".join(lines)
