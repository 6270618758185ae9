"""The badges and setup cells of every chapter and solution, written from `chapters.py`
(`census course sync`): the repository URL and what each chapter installs on Colab live there.
"""
import re
import sys

from census.course.chapters import BY_NAME, NAMES, REPO_URL, REPO_VARIABLE, badge
from census.course.environment import ROOT_VARIABLE, root
from census.course.notebook import rel


def setup_source(name):
    """The setup cell of chapter `name` (its code is the same in every chapter but for what
    it installs on Colab)."""
    extras = list(BY_NAME[name].colab_extras)
    return f'''\
# Setup. On Colab: fetch the course and install what this chapter needs, upgrading nothing
# Colab has. On your own machine: nothing to install, this finds your checkout.
import importlib.util, os, pathlib, subprocess, sys

if importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"):
    here = pathlib.Path.cwd()
    clone = next((p for p in (here, *here.parents)
                  if (p / "census" / "course" / "colab.py").is_file()), here / "census-course")
    url = os.environ.get("{REPO_VARIABLE}", "{REPO_URL}")
    if not (clone / "census" / "course" / "colab.py").is_file():
        git = subprocess.run(["git", "clone", "--quiet", "--depth", "1", url, str(clone)],
                             capture_output=True, text=True)
        if git.returncode:
            why = (git.stderr.strip().splitlines() or [f"git exit status {{git.returncode}}"])[-1]
            raise SystemExit(f"Could not clone {{url}} ({{why}}). Check the address, or set "
                             "{REPO_VARIABLE} to a fork or mirror, then run this cell again.")
    sys.path[:0] = [] if str(clone) in sys.path else [str(clone)]
    from census.course import colab
    colab.install(clone, {extras!r})
    os.environ["{ROOT_VARIABLE}"] = str(clone)

try:
    from census import course
except ImportError as error:
    if error.name != "census":  # a dependency is missing: its own error names it
        raise
    other = importlib.util.find_spec("census")
    raise SystemExit(
        (f"`census` here is another project ({{other.origin}}: PyPI's `census`, a client of the "
         "US Census Bureau's API), not this course: remove it (`pip uninstall census`), then "
         "install" if other else "Install")
        + f" the course (census-course) for {{sys.executable}}: run `make lab`, or "
        "`pip install -e .` in your checkout.") from None
course.start()'''


BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def setup_cell_index(nb):
    """The index of a notebook's code cell tagged `setup`; LookupError if it has none."""
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
