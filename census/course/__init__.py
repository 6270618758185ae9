"""The course around the package: the chapters and what they run on, the classroom exercises.

    chapters     the chapter list, badges, the course map, each chapter's papermill parameters
    environment  where the course's files are (`root`), what every chapter does first (`start`),
                 a path parameter as the user meant it (`user_path`)
    colab        on Colab: install what a chapter lacks, upgrade nothing
    notebook     what chapters print with: `rel`, `tidy`, `tree`, `fresh_dir`, `save_summary`
    runner       the chapters run with papermill (`make course`), their outputs scrubbed
    sync         badges and setup cells, written from the chapter list
    exercises    exercises/ made from solutions/ with nbgrader's preprocessors; grading; the
                 solutions run and written back with their outputs
    checks       the checks that the exercises call
    cli          `census course`, `census exercises`
    museum       the 2017 code's environment for the appendix (`make museum`), its kernel

It ships in the installed package, though no trainer needs it: the notebooks import `start`
and the helpers wherever they run (Colab's non-editable install, an nbgrader course folder),
and instructors grade with `census exercises` from an installed package. Its heavy imports
(papermill, nbgrader, nbconvert) happen only in the commands that need them. Importing it, and
`colab`, needs the standard library only: Colab's setup cell imports it before installing.

The notebooks' names, at hand: `from census import course; course.start(); course.rel(path)`.
"""
import census

if not hasattr(census, "DISTRIBUTION"):  # another project's `census` (PyPI's) came first on the
    # path, and an editable install's finder found this subpackage anyway: refuse, as a plain
    # `from census import course` would, so that the setup cell can name the other project
    raise ImportError(f"cannot import name 'course' from 'census' ({census.__file__})",
                      name="census", path=census.__file__)

from census.course.environment import start, user_path  # noqa: E402 (after the check above)
from census.course.notebook import fresh_dir, rel, save_summary, tidy, tree  # noqa: E402

__all__ = ["start", "user_path", "rel", "tidy", "tree", "fresh_dir", "save_summary"]
