"""What the chapters say about their results holds for the runs beside them: the committed
outputs (the full run), and the quick run of the test session (tests/smoke.py's job dirs and
the figures it showed)."""
import json
import re

import nbformat
import pandas as pd
import pytest

from census import export, plots, predict
from census.course import chapters, environment

REPO = environment.root()
SMOKE_JOBS = REPO / "jobs" / "test-smoke"


def printed(name):
    """Every text a committed chapter printed, cell by cell, in order."""
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    return ["".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells
            if c.cell_type == "code"]


def output_of(name, marker):
    """The printed text of the one cell of chapter `name` whose output contains `marker`."""
    [text] = [t for t in printed(name) if marker in t]
    return text


def table(text, columns):
    """The `columns` of a DataFrame a cell printed with `to_string(index=False)`: pandas
    right-aligns each column under its name, so a column's values lie between the end of the
    name before it and the end of its own, and every row is as long as the header. From the
    line holding `columns` (in order) to the first line that is not; numbers read as
    numbers."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if all(c in line for c in columns))
    header, spans, position = lines[at], [], 0
    for column in columns:  # from the end of the name before it to the end of its own
        position = header.index(column, position)
        spans.append((len(header[:position].rstrip()), position + len(column)))
        position += len(column)
    rows = []
    for line in lines[at + 1:]:
        if len(line.rstrip()) != len(header.rstrip()):  # every row ends where the header does
            break
        rows.append([line[start:end].strip() for start, end in spans])
    frame = pd.DataFrame(rows, columns=columns)
    for column in columns:
        try:
            frame[column] = pd.to_numeric(frame[column])
        except ValueError:
            pass
    return frame


def numbers(text):
    return [float(x.replace(",", "")) for x in re.findall(r"-?\d[\d,]*\.?\d*", text)]


# --- chapter 4: the curves, the memorising run, the summary's words -------------------------

def memorising_holds(curves):
    """The design of chapter 4's (and 5's) memorising run: the validation loss is lowest before
    the end, and after it the validation loss climbs and its AUC falls while the training
    loss falls."""
    best = curves["val_loss"].idxmin()
    last = curves.index[-1]
    assert best < last, curves
    assert curves["val_loss"][last] > 1.3 * curves["val_loss"][best], curves
    assert curves["val_auc"][last] < curves["val_auc"].max() - 0.02, curves
    assert curves["loss"][last] < 0.5 * curves["loss"][best], curves


def test_chapter_4_curves_say_what_their_numbers_say():
    curves = table(output_of("04_specs", " epoch  accuracy"),
                   ["epoch", "accuracy", "auc", "loss", "val_accuracy", "val_auc", "val_loss"])
    said = output_of("04_specs", "the training batches' loss was above")
    above = (curves["loss"] > curves["val_loss"]).sum()
    assert f"above the validation loss at {above} of {len(curves)} evaluations" in said
    assert len(curves) >= 10, "evaluated often enough to draw curves"
    lowest = re.search(r"lowest at step (\d+) \(([\d.]+)\)", said)
    step = (curves["val_loss"].idxmin() + 1) * (int(numbers(said.split("last step,")[1])[0])
                                                 // len(curves))
    assert int(lowest[1]) == step and float(lowest[2]) == curves["val_loss"].min()


def test_chapter_4_memorising_run_parts_the_curves():
    said = output_of("04_specs", "training batches' loss meanwhile")
    low, low_loss, end_loss, end, auc_low, auc_end = (
        float(x) for x in re.search(r"lowest at step (\d+) \(([\d.]+)\), ([\d.]+) at step (\d+); "
                                    r"validation AUC ([\d.]+) there, ([\d.]+)", said).groups())
    train_low, train_end = numbers(said.split("meanwhile:")[1])
    assert low < end and end_loss > 1.3 * low_loss and auc_end < auc_low - 0.02
    assert train_end < 0.5 * train_low


def test_chapter_4_summary_is_true_of_its_test_table():
    """"about 0.86 accuracy and 0.92 AUC … ten points above always answering <=50K, and within
    about a point of LightGBM" (the chapter's last section)."""
    text = output_of("04_specs", "scored once")
    results = pd.DataFrame([numbers(re.search(rf"^{row} .*$", text, re.MULTILINE)[0])
                            for row in ("accuracy", "AUC")], index=["accuracy", "AUC"])
    ours, trees, majority = (results[i] for i in range(3))
    assert round(ours["accuracy"], 2) == 0.86 and round(ours["AUC"], 2) == 0.92
    assert ours["accuracy"] >= 0.862 and ours["AUC"] >= 0.917  # the course's quality bar
    assert 0.08 <= ours["accuracy"] - majority["accuracy"] <= 0.12
    assert (abs(ours - trees) <= 0.015).all()
    assert any("about 0.86 accuracy and 0.92 AUC" in c.source and "ten points" in c.source
               for c in nbformat.read(REPO / "notebooks" / "04_specs.ipynb", as_version=4).cells)


# --- chapter 5: what BestExporter keeps when later evaluations get worse --------------------

def test_chapter_5_best_exporter_keeps_an_earlier_better_model():
    text = output_of("05_export", "val_auc  best so far")
    evaluations = table(text, ["step", "loss", "val_loss", "val_auc", "best so far"])
    improved = evaluations["best so far"].astype(str) == "True"
    assert improved.sum() == int(re.search(r"best/: (\d+) version", text)[1])
    assert not improved.iloc[-1], "the last evaluation must be worse than an earlier one"
    said = output_of("05_export", "best/ holds the model of step")
    (best_step, best_auc), (last_step, last_auc) = (
        (int(m[0]), float(m[1])) for m in re.findall(r"step (\d+): validation AUC ([\d.]+)", said))
    assert best_step == evaluations["step"][evaluations["val_auc"].idxmax()]
    assert last_step == evaluations["step"].iloc[-1] and best_auc > last_auc


# --- chapter 8: TPE's share of the study, the trials that answer <=50K ----------------------

def test_chapter_8_says_which_trials_tpe_proposed():
    text = output_of("08_hyperparameter_tuning", "proposed by TPE")
    results = table(text, ["trial", "accuracy", "proposed"])
    by_tpe = [int(t) for t, p in zip(results["trial"], results["proposed"])
              if p.startswith("TPE")]
    listed = re.search(r"proposed by TPE: (trials \[([\d, ]*)\]|none)", text)
    assert by_tpe == ([int(x) for x in listed[2].split(",")] if listed[2] else [])


def test_chapter_8_collapse_sentence_matches_its_table():
    text = output_of("08_hyperparameter_tuning", "classed >50K")
    checks = table(text, ["trial", "accuracy", "auc", "classed >50K"])
    collapsed = checks[checks["classed >50K"] < 0.01]["trial"].tolist()
    if collapsed:
        assert f"for (almost) everyone: {collapsed}" in text
    else:
        low, high = (float(x) / 100 for x in re.findall(r"([\d.]+)%", text)[:2])
        assert round(checks["classed >50K"].min(), 3) == round(low, 3)
        assert round(checks["classed >50K"].max(), 3) == round(high, 3)


def test_chapter_1_top_code_numbers():
    said = output_of("01_data", "the next largest gain is")
    people, top, share, nxt = numbers(said.replace(">50K", ""))[:4]
    assert top == 99_999 and people > 0 and nxt < top / 2 and share == 100


# --- the quick run: the same claims hold, by design ------------------------------------------

@pytest.mark.slow
def test_the_quick_run_memorises_and_best_exporter_keeps_the_best(smoke_run, census_files):
    assert smoke_run()["04_specs"] == "" and smoke_run()["05_export"] == ""
    memorising_holds(pd.read_csv(SMOKE_JOBS / "04_specs" / "memorising" / "eval" / "metrics.csv"))
    job = SMOKE_JOBS / "05_export" / "memorising"
    curves = pd.read_csv(job / "eval" / "metrics.csv")
    memorising_holds(curves)
    improvements = (curves["val_auc"] > curves["val_auc"].cummax().shift(fill_value=0)).sum()
    assert len(export.list_versions(job / "export" / "best")) == improvements
    best, latest = (predict.score(export.list_versions(job / "export" / name)[-1],
                                  [census_files.validation])["auc"] for name in ("best", "latest"))
    assert best > latest


@pytest.mark.slow
def test_every_figure_of_the_quick_run_is_readable(smoke_run):
    """tests/smoke.py has `census.plots.check_shown_figures` check each figure as it is shown."""
    assert smoke_run()["nbval"] == ""
    from smoke import FIGURES
    shown = [json.loads(line) for line in FIGURES.read_text().splitlines()]
    committed = sum("image/png" in o.get("data", {}) for name in chapters.NAMES
                    for c in nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4).cells
                    for o in c.get("outputs", []))
    assert len(shown) >= committed, (len(shown), committed)
    assert [f for f in shown if f["problems"]] == []


# --- the checker itself ------------------------------------------------------------------------

def test_unreadable_finds_overlapping_and_clipped_text():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2), dpi=80)
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    ax.text(0.9, 0.1, "a label far too long for the figure")
    ax.legend(handles=ax.plot([0, 1], [0, 1], label="a line"), loc="center")
    plt.close(fig)
    problems = plots.unreadable(fig)
    assert "'one label' overlaps 'another label'" in problems
    assert "'a label far too long for the figure' runs off the figure" in problems
    assert "'one label' is under the legend" in problems
    fine, ax = plt.subplots(figsize=(3, 2), dpi=80)
    ax.plot([0, 1], [0, 1], label="a line")
    ax.set_title("fine")
    ax.legend()
    assert any("runs off the figure" in p for p in plots.unreadable(fine))  # tick labels
    fine.tight_layout()  # … until the layout makes room for them
    plt.close(fine)
    assert plots.unreadable(fine) == []


def test_trial_metric_stays_readable_with_close_trials():
    """Two trials at nearly the same point once printed their ids over each other."""
    results = pd.DataFrame({"trial": range(1, 13), "size": [466, 471] * 6,
                            "accuracy": [0.8793, 0.8784] * 6})
    assert plots.unreadable(plots.trial_metric(results, ["size"], baseline=0.7592,
                                               baseline_label="always <=50K")) == []
