"""What the chapters print with: paths as a reader should see them (never this machine's),
short listings of job dirs, fresh job dirs, chapter 4's summary.
"""
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from census.course.chapters import RESULTS_FILE
from census.course.environment import CourseNotFound, root


def _machine_path_pattern():
    """Absolute paths of machines in general (home and temporary folders, Colab's /content,
    Windows drives) and of this one wherever it keeps the course: its clone, the folder
    beside it, home, the temporary folder — a CI checkout outside the usual folders too."""
    here = [Path.home(), Path(tempfile.gettempdir())]
    try:
        here += [root(), root().parent]
    except CourseNotFound:
        pass
    own = sorted({re.escape(f"{p.resolve().as_posix()}/") for p in here
                  if len(p.resolve().parts) > 1}, key=len, reverse=True)  # the longest named
    generic = r"/(work|home|root|tmp|Users|var/folders|content)/|[A-Z]:\\\\"
    return re.compile(r"(?<![\w.:/])(" + "|".join([generic, *own]) + ")")


# Never in a committed notebook or in what a chapter prints (rel() and tidy() show paths
# relative to the course instead).
MACHINE_PATH = _machine_path_pattern()


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


def without_machine_paths(text):
    """Text with the course's folder (and then the home folder) written as `rel` writes them:
    exact prefixes only, so that URLs and other absolute names stay as they are."""
    return str(text).replace(f"{root()}/", "").replace(f"{Path.home().resolve()}/", "~/")


def tree(path, depth=4, limit=40, per_dir=6):
    """An `ls -R`-like listing of a directory, relative names, at most `per_dir` entries per
    directory (the rest counted) and `limit` lines in all."""
    root = Path(path)
    lines = [rel(root) + "/"]

    def walk(folder, prefix, level):
        entries = sorted((p for p in folder.iterdir() if p.name != JOB_MARK),
                         key=lambda p: (p.is_file(), p.name))
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


JOB_MARK = ".census-job"  # left in each folder fresh_dir made: it may empty that folder again


def fresh_dir(path):
    """Empty a job dir (so logs and curves show one run only) and return it as a string.

    Only a folder that is new, empty, under the course's jobs/, or made by fresh_dir before is
    emptied: a JOB_DIR a learner pointed at a folder of their own loses nothing. Raises
    FileExistsError, naming the folder, for any other."""
    folder = Path(path)
    if folder.is_dir() and any(folder.iterdir()) and not (folder / JOB_MARK).exists():
        try:
            folder.resolve().relative_to(root() / "jobs")
        except ValueError:
            raise FileExistsError(f"{folder} holds files this course did not write: pass a new "
                                  "or empty folder as the job dir") from None
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / JOB_MARK).touch()
    return str(path)


def save_summary(job_dir, results):
    """Chapter 4's numbers, read back by `make course`'s summary."""
    Path(job_dir, RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
