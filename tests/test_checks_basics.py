"""The checks of chapters 1–3 accept a right answer and reject wrong ones with their hint."""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from census import instances, data, inputs, model, schema
from conftest import REPO, fails
from census.course import checks


@pytest.fixture(scope="module")
def train(census_files):
    return data.load_frame(census_files.train)


# --- the check machinery --------------------------------------------------------------------

def test_failure_shows_problem_and_hint_without_traceback():
    def stub(*args):
        raise NotImplementedError()
    error = fails(checks.check_hidden_units, stub)
    assert isinstance(error, checks.NotAnswered) and isinstance(error, NotImplementedError)
    lines = error._render_traceback_()  # what IPython prints instead of a traceback
    assert len(lines) == 2 and "Not answered yet: hidden_units(100, 4, 0.7)" in lines[0]
    assert lines[1].startswith("  Hint: replace `# YOUR CODE HERE`")


def test_a_crash_in_the_answer_is_reported_in_one_line():
    error = fails(checks.check_hidden_units, lambda *a: 1 / 0)
    assert error.problem == ("calling hidden_units(100, 4, 0.7) raised ZeroDivisionError: "
                             "division by zero")
    assert "run your function on its own" in error.hint


# --- chapter 1 ------------------------------------------------------------------------------

def read_raw(path, **changes):
    note = open(path).readline().startswith("|")
    frame = pd.read_csv(path, **{"header": None, "names": list(schema.CSV_COLUMNS),
                                 "skipinitialspace": True, "na_filter": False,
                                 "skiprows": 1 if note else 0, **changes})
    frame[schema.LABEL_COLUMN] = frame[schema.LABEL_COLUMN].str.rstrip(".")
    return frame


def test_check_read_raw(census_files, capsys):
    raw_test, clean_test = census_files.report.eval.file, census_files.eval
    checks.check_read_raw(read_raw, raw_test, clean_test)
    assert capsys.readouterr().out.startswith("✓ read_raw reads 16,281 people from adult.test")
    wrong = [
        (lambda p: read_raw(p, skiprows=0), "the first line of adult.test is a note"),
        (lambda p: read_raw(p, skipinitialspace=False), "skipinitialspace=True"),
        (lambda p: pd.read_csv(p, header=None, skiprows=1), "pass names=schema.CSV_COLUMNS"),
        (lambda p: read_raw(p).values, "return the DataFrame itself"),
        (lambda p: read_raw(p).assign(income_bracket=lambda f: f.income_bracket + "."),
         ".str.rstrip('.')"),
    ]
    for answer, hint in wrong:
        assert hint in fails(checks.check_read_raw, answer, raw_test, clean_test).hint
    always_skip = fails(checks.check_read_raw, lambda p: read_raw(p, skiprows=1),
                        census_files.report.train.file, census_files.train)  # adult.data
    assert "skip the '|1x3 Cross validator' line" in always_skip.hint


def income_rate_by(frame, column):
    high = frame.income_bracket == ">50K"
    return high.groupby(frame[column]).mean().sort_values(ascending=False)


def test_check_income_rate_by(train, capsys):
    checks.check_income_rate_by(income_rate_by, train, "education")
    assert "Doctorate leads with 74%" in capsys.readouterr().out
    wrong = [
        (lambda f, c: income_rate_by(f, c).sort_index(), "sort_values(ascending=False)"),
        (lambda f, c: 1 - income_rate_by(f, c), "compare the label with '>50K'"),
        (lambda f, c: (f.income_bracket == ">50K").groupby(f[c]).sum(),
         "divide by the size of each group"),
        (lambda f, c: income_rate_by(f, c).reset_index(drop=True), "group by frame['education']"),
    ]
    for answer, hint in wrong:
        assert hint in fails(checks.check_income_rate_by, answer, train, "education").hint


def test_check_rows_with_missing(train):
    checks.check_rows_with_missing(lambda f: f[(f == "?").any(axis=1)], train)
    wrong = [
        (lambda f: f[f.occupation == "?"], "test every column"),
        (lambda f: f[~(f == "?").any(axis=1)], "keep those with one"),
        (lambda f: f[(f == "?").any(axis=1)].reset_index(drop=True), "do not reset"),
    ]
    for answer, hint in wrong:
        assert hint in fails(checks.check_rows_with_missing, answer, train).hint


# --- chapter 2 ------------------------------------------------------------------------------

def test_check_hidden_units():
    checks.check_hidden_units(model.layer_sizes)
    wrong = [
        (lambda f, n, s: [max(2, int(f * s ** (i + 1))) for i in range(n)],
         "multiply by scale_factor ** i for i = 0"),
        (lambda f, n, s: [int(f * s ** i) for i in range(n)], "max(2, …)"),
        (lambda f, n, s: [max(2, round(f * s ** i)) for i in range(n)], "truncates with int()"),
        (lambda f, n, s: [f * s ** i for i in range(n)], "convert with int()"),
    ]
    for answer, hint in wrong:
        assert hint in fails(checks.check_hidden_units, answer).hint


def people():
    return [json.loads(line) for line in open(REPO / "test.json")]


def columns(group):
    return instances.to_tensors("JSON", group)


def test_check_predict_people():
    checks.check_predict_people(lambda m, g: tf.sigmoid(m(columns(g), training=False)), people())
    wrong = [
        (lambda m, g: m(columns(g), training=False), "apply tf.sigmoid"),
        (lambda m, g: 1 - tf.sigmoid(m(columns(g), training=False)), "do not take 1 - p"),
        (lambda m, g: m(g), "the model takes a dict: column name → a 1-D tensor"),
    ]
    for answer, hint in wrong:
        assert hint in fails(checks.check_predict_people, answer, people()).hint


def test_check_compare_cross_looks_at_the_models(census_files):
    pair, files = ("gender", "occupation"), (census_files.train, census_files.eval)
    wrong = [
        (lambda p, t, e, s: {"without": model.build_model(), "with": model.build_model()},
         "extra_crosses=[('gender', 'occupation')]"),
        (lambda p, t, e, s: {"without": model.build_model(),
                             "with": model.build_model(extra_crosses=[p])},
         "steps_per_epoch=steps"),  # built, never trained
        (lambda p, t, e, s: 0.9, "{'without': …, 'with': …}"),
    ]
    for answer, hint in wrong:
        assert hint in fails(checks.check_compare_cross, answer, pair, *files, 10).hint


# --- chapter 3 ------------------------------------------------------------------------------

def frame_input_fn(frame, batch_size=128, shuffle=True, numbers="float32", text_labels=False,
                   epochs=1):
    features = {c: frame[c].to_numpy(numbers) if c in schema.NUMERIC_COLUMNS
                else frame[c].to_numpy(str) for c in schema.INPUT_COLUMNS}
    label = frame.income_bracket.to_numpy(str) if text_labels else \
        (frame.income_bracket == ">50K").to_numpy("int32")
    dataset = tf.data.Dataset.from_tensor_slices((features, label))
    if shuffle:
        dataset = dataset.shuffle(len(frame))
    return dataset.repeat(epochs).batch(batch_size)


def test_check_frame_input_fn(train, capsys):
    checks.check_frame_input_fn(frame_input_fn, train)
    assert capsys.readouterr().out.startswith("✓ frame_input_fn feeds 32,561 rows once")
    wrong = [
        (dict(numbers="int64"), "cast the numeric columns"),
        (dict(text_labels=True), "label = 1 for '>50K', 0 for '<=50K'"),
        (dict(epochs=2), "no .repeat()"),
        (dict(shuffle=False), "call .shuffle(buffer_size) before .batch"),
    ]
    for changes, hint in wrong:
        def answer(frame, batch_size=128, shuffle=True):
            options = dict(dict(shuffle=shuffle), **changes)
            return frame_input_fn(frame, batch_size, **options)
        assert hint in fails(checks.check_frame_input_fn, answer, train).hint

    def label_kept(frame, batch_size, shuffle):
        features = dict(frame[["age", "income_bracket"]])
        return tf.data.Dataset.from_tensor_slices((features, np.zeros(len(frame)))).batch(32)
    assert "take 'income_bracket' out" in fails(checks.check_frame_input_fn, label_kept,
                                                train).hint


def test_check_balanced_input_fn(census_files):
    def plain(files, batch_size):
        return inputs.input_fn(files, batch_size=batch_size)

    def high_only(files, batch_size):
        rows = inputs.input_fn(files, batch_size=batch_size).unbatch()
        return rows.filter(lambda features, label: label == 1).batch(batch_size)

    def short(files, batch_size):
        return inputs.input_fn(files, num_epochs=1, batch_size=batch_size).take(3)
    for answer, hint in ((plain, "sample_from_datasets"), (high_only, "weight 0.5"),
                         (short, "repeat the data")):
        assert hint in fails(checks.check_balanced_input_fn, answer, [census_files.train]).hint
