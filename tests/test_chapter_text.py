"""What the chapters and solutions say and show: no talk of the test harness, nothing private on
display, no hidden stderr, and their sources at the end."""
import re
from pathlib import Path

import nbformat
import pytest

from census import quiet
from census.course import chapters, environment

REPO = environment.root()
NOTEBOOKS = [(folder, name) for folder in ("notebooks", "solutions") for name in chapters.NAMES]
NOTEBOOKS.append(("notebooks", chapters.APPENDIX.name))

# Words of the harness, not of the course: the smoke switch, nbval, the test suite, the targets
# that run it. (papermill stays: chapter 8 teaches a notebook as a tuning trial.)
HARNESS = re.compile(r"\bSMOKE\b|\bsmoke\b|nbval|\bthe tests\b|\btest suite\b|"
                     r"\bmake (test|course|outputs)\b|pytest|course-design\.md", re.IGNORECASE)
# An attribute whose name starts with one underscore, read from a census module or object.
PRIVATE_USE = re.compile(r"\b[a-z]\w*\._[a-z]\w*")
PRIVATE_SOURCE = re.compile(r"^\s*(def|class) _[a-z]\w*", re.MULTILINE)


def cells(folder, name):
    return nbformat.read(REPO / folder / f"{name}.ipynb", as_version=4).cells


def comments(source):
    return "\n".join(line.split("#", 1)[1] for line in source.splitlines() if "#" in line)


@pytest.mark.parametrize("folder, name", NOTEBOOKS)
def test_prose_does_not_talk_about_the_harness(folder, name):
    for cell in cells(folder, name):
        if "parameters" in cell.metadata.get("tags", []):
            continue  # the smoke switch is declared there, for the runner
        text = cell.source if cell.cell_type == "markdown" else comments(cell.source)
        found = HARNESS.search(text)
        assert not found, f"{folder}/{name}: {found.group(0)!r} in {cell.source[:80]!r}"


@pytest.mark.parametrize("folder, name", NOTEBOOKS)
def test_nothing_private_is_shown_or_called(folder, name):
    for cell in cells(folder, name):
        if cell.cell_type != "code":
            continue
        used = PRIVATE_USE.search(cell.source)
        assert not used, f"{folder}/{name} uses {used.group(0)!r}"
        for output in cell.get("outputs", []):
            text = output.get("text", "") + "".join(output.get("data", {}).get("text/plain", ""))
            shown = PRIVATE_SOURCE.search(text)
            assert not shown, f"{folder}/{name} shows {shown.group(0).strip()!r}"


@pytest.mark.parametrize("folder, name", NOTEBOOKS)
def test_no_command_hides_its_stderr(folder, name):
    for cell in cells(folder, name):
        if cell.cell_type == "code":
            assert "2>/dev/null" not in cell.source and "2>&-" not in cell.source, cell.source


@pytest.mark.parametrize("name", chapters.ALL_NAMES)
def test_each_chapter_ends_with_its_references(name):
    markdown = [c.source for c in cells("notebooks", name) if c.cell_type == "markdown"]
    references = [s for s in markdown if "## References" in s]
    assert references, f"{name} has no References section"
    section = references[-1].split("## References", 1)[1]
    assert len(re.findall(r"\]\((https?://[^)\s]+)\)", section)) >= 2, section
    assert markdown.index(references[-1]) >= len(markdown) - 2, "References come last"


def test_the_private_patterns_catch_what_they_should():
    assert PRIVATE_USE.search("print(inspect.getsource(model._indices))")
    assert not PRIVATE_USE.search("model.layer_sizes(100, 4, 0.7)")
    assert PRIVATE_SOURCE.search("def _wide_logit(indices):\n    pass")
    assert HARNESS.search("`SMOKE = True` is the quick setting the tests use")
    assert not HARNESS.search("a small notebook run with papermill as a trial")


def test_the_notebooks_folder_talks_to_learners():
    """notebooks/README.md is read by learners browsing the chapters: no harness, no module
    that does not exist."""
    text = (REPO / "notebooks" / "README.md").read_text()
    found = HARNESS.search(text)
    assert not found, found.group(0)
    for name in re.findall(r"`(census/[\w/.]+)`", text):
        assert (REPO / name).exists(), name


# tensorflow.org's unversioned tf.keras pages and keras.io/api document Keras 3, not tf-keras.
KERAS_3_PAGES = re.compile(r"https?://(www\.)?tensorflow\.org/api_docs/python/tf/keras/|"
                           r"https?://keras\.io/api/")
TF_KERAS_SOURCE = re.compile(r"\[`?([^\]`]+)`?\]\(https://github\.com/keras-team/tf-keras/blob/"
                             r"([^/]+)/tf_keras/([^#)]+)#L(\d+)\)")


def texts_for_learners():
    for folder in ("notebooks", "solutions", "exercises"):
        for name in chapters.NAMES:
            yield f"{folder}/{name}", "\n".join(
                c.source for c in cells(folder, name) if c.cell_type == "markdown")
    yield "README.md", (REPO / "README.md").read_text()


def test_no_keras_link_opens_a_keras_3_page():
    for where, text in texts_for_learners():
        found = KERAS_3_PAGES.search(text)
        assert not found, f"{where}: {found.group(0)} documents Keras 3, the course runs tf-keras"


def test_tf_keras_links_open_the_pinned_source_at_the_class():
    """A tf-keras link names the installed version's tag, a file that exists there, and the
    line where the linked class is defined (the installed files match the tag's line for line)."""
    import tf_keras
    package, found = Path(tf_keras.__file__).parent / "src", 0
    for where, text in texts_for_learners():
        for label, tag, path, line in TF_KERAS_SOURCE.findall(text):
            found += 1
            assert tag == f"v{tf_keras.__version__}", f"{where}: {tag} for {label}"
            lines = (package / path).read_text().splitlines()
            name = re.match(r"[\w.]+", label)[0].split(".")[-1]
            assert lines[int(line) - 1].startswith(f"class {name}"), f"{where}: {label} {line}"
    assert found >= 7


@pytest.mark.parametrize("name", chapters.NAMES)
def test_tensorflow_start_up_notes_show_once_at_most(name):
    """A chapter may show TensorFlow's start-up block once, to explain it; never again."""
    printed = "".join(o.get("text", "") for c in cells("notebooks", name) if c.cell_type == "code"
                      for o in c.get("outputs", []))
    notes = [line.split("] ", 1)[-1] for line in printed.splitlines()
             if quiet.STARTUP_NOTES.search(line)]
    assert len(notes) == len(set(notes)), f"{name} repeats start-up notes: {notes}"


# Calls a chapter makes for its own plumbing, not for what it teaches: each must be introduced
# where a learner first meets it, in the text before it or in a comment on its line.
PLUMBING = ("course.rel", "course.tidy", "course.tree", "course.fresh_dir", "course.save_summary",
            "course.user_path", "quiet.logs", "quiet.shell", "OptimizerStateNotes",
            "disable_interactive_logging", "logs.show_by_role", "logs.events")


@pytest.mark.parametrize("name", chapters.NAMES)
def test_plumbing_is_introduced_where_it_first_appears(name):
    said, unexplained = "", []
    for cell in cells("notebooks", name):
        if cell.cell_type == "markdown":
            said += cell.source
            continue
        lines = cell.source.splitlines()
        for call in PLUMBING:
            at = next((i for i, x in enumerate(lines) if re.search(rf"\b{re.escape(call)}\b", x)),
                      None)
            if at is not None and call not in said:
                if "#" not in lines[at] and not lines[max(at - 1, 0)].lstrip().startswith("#"):
                    unexplained.append(f"`{call}` in: {lines[at].strip()}")
                said += call  # introduced here (or reported once)
    assert not unexplained, f"{name}: " + "; ".join(unexplained)
