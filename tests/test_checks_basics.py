"""The checks of chapters 1–3 accept a right answer and reject wrong ones with hints that
lead (the first) before they tell (the last)."""
import json
import re

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from census import data, inputs, instances, model, schema
from census.course import checks
from conftest import REPO, fails, leads_then_tells, told


@pytest.fixture(scope="module")
def train(census_files):
    return data.load_frame(census_files.train)


# --- the check machinery --------------------------------------------------------------------

def test_failure_shows_problem_and_hint_without_traceback(census_files):
    def stub(*args):
        raise NotImplementedError()
    error = fails(checks.check_deep_model, stub, census_files.train, census_files.validation, 1)
    assert isinstance(error, checks.NotAnswered) and isinstance(error, NotImplementedError)
    lines = error._render_traceback_()  # what IPython prints instead of a traceback
    assert len(lines) == 2 and "Not answered yet: deep_model(100, 4, 0.7)" in lines[0]
    assert lines[1].startswith("  Hint: replace `# YOUR CODE HERE`")


def test_a_crash_in_the_answer_is_reported_in_one_line(census_files):
    error = fails(checks.check_deep_model, lambda *a: 1 / 0, census_files.train,
                  census_files.validation, 1)
    assert error.problem == ("calling deep_model(100, 4, 0.7) raised ZeroDivisionError: "
                             "division by zero")
    assert "run your function on its own" in error.hint


def test_hints_lead_then_tell_as_the_same_problem_comes_back(train):
    """The first failure shows the leading hint and says a closer one exists; the same
    failure again shows the next hint; the last one stays; reset_hints starts over."""
    def unsorted(frame, column):
        return income_rate_by(frame, column).sort_index()
    checks.reset_hints()
    first = fails(checks.check_income_rate_by, unsorted, train, "education")
    assert len(first.hints) == 2 and first.step == 0 and first.hint == first.hints[0]
    assert "sort_values" not in first.hint  # it points at the idea, not the code
    lines = first._render_traceback_()
    assert len(lines) == 3 and lines[1] == f"  Hint: {first.hints[0]}"
    assert "hint 1 of 2" in lines[2] and "Run the check again" in lines[2]
    second = fails(checks.check_income_rate_by, unsorted, train, "education")
    assert second.step == 1 and second.hint == "end with .sort_values(ascending=False)"
    assert len(second._render_traceback_()) == 2  # the last hint: nothing more to come
    assert fails(checks.check_income_rate_by, unsorted, train, "education").step == 1
    checks.reset_hints()
    assert fails(checks.check_income_rate_by, unsorted, train, "education").step == 0
    assert str(second) == "the values are not sorted, highest first\nHint: " + second.hint


def test_a_failure_survives_pickling():
    """Failures cross process boundaries (grading in parallel): they keep their text."""
    import pickle
    error = checks.CheckFailed("the problem", "a lead", "the fix")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error)


# --- chapter 1 ------------------------------------------------------------------------------

def read_raw(path, **changes):
    note = open(path).readline().startswith("|")
    frame = pd.read_csv(path, **{"header": None, "names": list(schema.CSV_COLUMNS),
                                 "skipinitialspace": True, "na_filter": False,
                                 "skiprows": 1 if note else 0, **changes})
    frame[schema.LABEL_COLUMN] = frame[schema.LABEL_COLUMN].str.rstrip(".")
    return frame


def test_check_read_raw(census_files, capsys):
    raw_test, clean_test = census_files.report.test.file, census_files.test
    checks.check_read_raw(read_raw, raw_test, clean_test)
    assert capsys.readouterr().out.startswith("✓ read_raw reads 16,281 people from adult.test")
    wrong = [
        (lambda p: read_raw(p, skiprows=0), "skiprows=1"),
        (lambda p: read_raw(p, skipinitialspace=False), "skipinitialspace=True"),
        (lambda p: pd.read_csv(p, header=None, skiprows=1), "names=schema.CSV_COLUMNS"),
        (lambda p: read_raw(p).values, "return the DataFrame itself"),
        (lambda p: read_raw(p).assign(income_bracket=lambda f: f.income_bracket + "."),
         ".str.rstrip('.')"),
    ]
    for answer, hint in wrong:
        assert hint in told(fails(checks.check_read_raw, answer, raw_test, clean_test))
    note = fails(checks.check_read_raw, lambda p: read_raw(p, skiprows=0), raw_test, clean_test)
    assert "the first line of adult.test is a note" in note.hints[0]
    assert "skiprows" not in note.hints[0]
    # adult.data went to two cleaned files (training and validation splits)
    raw_data, cleaned = census_files.report.train.file, [census_files.train,
                                                          census_files.validation]
    checks.check_read_raw(read_raw, raw_data, cleaned)
    assert "reads 32,561 people from adult.data" in capsys.readouterr().out
    always_skip = fails(checks.check_read_raw, lambda p: read_raw(p, skiprows=1), raw_data,
                        cleaned)
    assert "skip the '|1x3 Cross validator' line" in told(always_skip)


def income_rate_by(frame, column):
    high = frame.income_bracket == ">50K"
    return high.groupby(frame[column]).mean().sort_values(ascending=False)


def test_check_income_rate_by(train, capsys):
    checks.check_income_rate_by(income_rate_by, train, "education")
    assert "Doctorate leads with 73%" in capsys.readouterr().out
    wrong = [
        (lambda f, c: income_rate_by(f, c).sort_index(), "sort_values(ascending=False)"),
        (lambda f, c: 1 - income_rate_by(f, c), "compare the label with '>50K'"),
        (lambda f, c: (f.income_bracket == ">50K").groupby(f[c]).sum(),
         ".mean() of a True/False column"),
        (lambda f, c: income_rate_by(f, c).reset_index(drop=True), "group by frame['education']"),
    ]
    for answer, hint in wrong:
        error = fails(checks.check_income_rate_by, answer, train, "education")
        assert leads_then_tells(error, hint), error.hints


def split_validation(frame, share, seed):
    validation = frame.groupby(schema.LABEL_COLUMN).sample(frac=share, random_state=seed)
    return frame.drop(validation.index), validation


def first_rows(frame, share, seed):
    validation = pd.concat([rows.head(round(share * len(rows)))
                            for _, rows in frame.groupby(schema.LABEL_COLUMN)])
    return frame.drop(validation.index), validation


def test_check_split_validation(train, census_files, capsys):
    checks.check_split_validation(split_validation, train)
    assert capsys.readouterr().out.startswith("✓ 2,931 of 29,305 rows held out (10.0%)")
    checks.check_split_validation(split_validation, data.load_frame(census_files.test), 0.25, 7)
    plain = lambda f, s, r: (f.drop(f.sample(frac=s, random_state=r).index),  # noqa: E731
                             f.sample(frac=s, random_state=r))
    wrong = [
        (plain, "groupby(schema.LABEL_COLUMN).sample(frac=share, random_state=seed)"),
        (lambda f, s, r: (f, split_validation(f, s, r)[1]), "frame.drop(validation.index)"),
        (lambda f, s, r: split_validation(f, s, None), "random_state=seed"),
        (lambda f, s, r: split_validation(f, s, 0), "random_state=seed"),
        (lambda f, s, r: tuple(p.reset_index(drop=True) for p in split_validation(f, s, r)),
         "do not reset_index"),
        (lambda f, s, r: split_validation(f, s, r)[::-1], "the held-out part is the small one"),
        (lambda f, s, r: split_validation(f, s, r)[1], "return train, validation"),
        (first_rows, "DataFrame.sample(frac=share, random_state=seed)"),
        (lambda f, s, r: (f.drop(split_validation(f, s, r)[1].index),
                          f.groupby(schema.LABEL_COLUMN).sample(frac=s, random_state=r,
                                                                 replace=True)),
         "replace=False"),
    ]
    for answer, hint in wrong:
        assert hint in told(fails(checks.check_split_validation, answer, train))
    assert "each label separately" in fails(checks.check_split_validation, plain,
                                            train).hints[0]
    assert "not a random draw" in fails(checks.check_split_validation, first_rows,
                                        train).hints[0]


# --- chapter 2 ------------------------------------------------------------------------------

def deep_model(first_layer_size, num_layers, scale_factor, strip=True, normalize=True,
               log=True, activation="relu", last=None, sizes=model.layer_sizes):
    import tf_keras as keras
    raw = {c: keras.Input(shape=(), dtype=schema.INPUT_DTYPES[c], name=c)
           for c in schema.INPUT_COLUMNS}
    parts = []
    for c, vocabulary in schema.VOCABULARIES.items():
        text = tf.strings.strip(raw[c]) if strip else raw[c]
        index = keras.layers.StringLookup(vocabulary=list(vocabulary))(text)
        parts.append(keras.layers.Embedding(len(vocabulary) + 1, 8)(index))
    for c in schema.NUMERIC_COLUMNS:
        x = tf.math.log1p(raw[c]) if c in schema.LOG_COLUMNS and log else raw[c]
        if normalize:
            mean, variance = schema.NUMERIC_STATS[c]
            x = keras.layers.Normalization(mean=mean, variance=variance)(x[:, None])
        else:
            x = x[:, None]
        parts.append(x)
    x = keras.layers.Concatenate()(parts)
    for units in sizes(first_layer_size, num_layers, scale_factor):
        x = keras.layers.Dense(units, activation=activation)(x)
    return keras.Model(raw, keras.layers.Dense(1, activation=last)(x))


def test_check_deep_model_right(census_files, capsys):
    checks.check_deep_model(deep_model, census_files.train, census_files.validation, 100)
    out = capsys.readouterr().out
    assert out.startswith("✓ the deep half [100, 70, 48, 34] from 13 raw inputs")
    assert "the 2017 rule holds for 3 shapes" in out


@pytest.mark.parametrize("changes, fix", [
    (dict(strip=False), "tf.strings.strip(inputs[column])"),
    (dict(normalize=False, log=False), "tf.math.log1p of schema.LOG_COLUMNS"),
    (dict(normalize=False), "keras.layers.Normalization(mean=mean, variance=variance)"),
    (dict(activation=None), "activation='relu'"),
    (dict(last="sigmoid"), "no activation on the last layer"),
    (dict(sizes=lambda f, n, s: [max(2, int(f * s ** (i + 1))) for i in range(n)]),
     "for i = 0, 1, 2"),
    (dict(sizes=lambda f, n, s: [max(1, int(f * s ** i)) for i in range(n)]), "max(2, …)"),
    (dict(sizes=lambda f, n, s: [max(2, round(f * s ** i)) for i in range(n)]), "not round()"),
    (dict(sizes=lambda f, n, s: model.layer_sizes(f, n - 1, s)), "range(num_layers)"),
])
def test_check_deep_model_mistakes(census_files, changes, fix):
    answer = lambda f, n, s: deep_model(f, n, s, **changes)  # noqa: E731
    error = fails(checks.check_deep_model, answer, census_files.train, census_files.validation,
                  100)
    assert leads_then_tells(error, fix), error.hints


def test_check_deep_model_wants_tf_keras(census_files):
    import keras  # Keras 3, what tf.keras is in TensorFlow 2.16 and later
    answer = lambda f, n, s: keras.Sequential([keras.layers.Dense(1)])  # noqa: E731
    error = fails(checks.check_deep_model, answer, census_files.train, census_files.validation,
                  100)
    assert "Keras 3" in error.problem and "import tf_keras as keras" in told(error)


def people():
    return [json.loads(line) for line in open(REPO / "test.json")]


def columns(group):
    return instances.to_tensors("JSON", group)


def test_check_predict_people():
    checks.check_predict_people(lambda m, g: tf.sigmoid(m(columns(g), training=False)), people())
    wrong = [
        (lambda m, g: m(columns(g), training=False), "apply tf.sigmoid"),
        (lambda m, g: 1 - tf.sigmoid(m(columns(g), training=False)), "do not take 1 - p"),
        (lambda m, g: m(g), "{c: tf.constant([p[c] for p in people]"),
        (lambda m, g: tf.sigmoid(m(columns(g), training=True)), "training=False"),
    ]
    for answer, hint in wrong:
        assert hint in told(fails(checks.check_predict_people, answer, people()))
    crash = fails(checks.check_predict_people, lambda m, g: m(g), people())
    assert "one dict for the whole batch" in crash.hints[0]


def test_check_compare_cross_looks_at_the_models(census_files):
    pair, files = ("gender", "occupation"), (census_files.train, census_files.validation)
    wrong = [
        (lambda p, t, s, seeds: {"without": [model.build_model()],
                                 "with": [model.build_model()]},
         "extra_crosses=[('gender', 'occupation')]"),
        (lambda p, t, s, seeds: {"without": [model.build_model()],
                                 "with": [model.build_model(extra_crosses=[p])]},
         "steps_per_epoch=steps"),  # built, never trained
        (lambda p, t, s, seeds: {"without": model.build_model(),
                                 "with": model.build_model(extra_crosses=[p])},
         "append the model to that variant's list"),  # one model each, not one per seed
        (lambda p, t, s, seeds: 0.9, "{'without': [one plain model per seed]"),
    ]
    for answer, hint in wrong:
        assert hint in told(fails(checks.check_compare_cross, answer, pair, *files, 10,
                                  seeds=[0]))


def cross_runs(seed_of=lambda seed: seed):
    """A compare_cross answer; `seed_of(seed)` is the seed it sets before each model."""
    def compare_cross(pair, train_file, steps, seeds):
        trained = {"without": [], "with": []}
        for seed in seeds:
            for key, crosses in (("without", []), ("with", [pair])):
                tf.keras.utils.set_random_seed(seed_of(seed))
                m = model.build_model(extra_crosses=crosses)
                m.fit(inputs.input_fn([train_file], batch_size=128), steps_per_epoch=steps,
                      epochs=1, verbose=0)
                trained[key].append(m)
        return trained
    return compare_cross


@pytest.mark.slow  # 8 models trained, a few steps each
def test_check_compare_cross_measures_the_seeds_spread(census_files, capsys):
    """One seed for every run is one run repeated: no spread to compare with. With a seed per
    run, the check reports each variant's mean, sd and range, and judges the difference."""
    pair, files = ("gender", "occupation"), (census_files.train, census_files.validation)
    error = fails(checks.check_compare_cross, cross_runs(lambda seed: 0), pair, *files, 5,
                  seeds=[0, 1])
    assert "answer exactly alike" in error.problem
    assert leads_then_tells(error, "keras.utils.set_random_seed(seed)")
    checks.check_compare_cross(cross_runs(), pair, *files, 5, seeds=[0, 1])
    out = capsys.readouterr().out
    assert out.startswith("✓ gender × occupation: validation AUC (exact) over 2 seed(s)"), out
    assert re.search(r"without the cross +0\.\d{4} ± 0\.\d{4} \(sd\)   min–max 0\.\d{4}–0\.\d{4}",
                     out), out
    assert re.search(r"difference [+-]0\.\d{4}, standard error 0\.\d{4} .*: (more|within) "
                     r"twice its standard error", out), out


def test_seed_report_judges_the_difference_against_the_spread():
    from census.course.checks.model import _seed_report
    apart = {"without": np.array([0.900, 0.901, 0.902]), "with": np.array([0.910, 0.911, 0.912])}
    assert "more than twice its standard error" in _seed_report(apart, ("a", "b"), 10, 3)
    close = {"without": np.array([0.900, 0.905, 0.910]), "with": np.array([0.902, 0.907, 0.912])}
    report = _seed_report(close, ("a", "b"), 10, 3)
    assert "0.9050 ± 0.0050 (sd)   min–max 0.9000–0.9100" in report
    assert "difference +0.0020, standard error 0.0041" in report
    assert "within twice its standard error" in report
    one = {"without": np.array([0.9]), "with": np.array([0.91])}
    assert "one seed gives no measure of the noise" in _seed_report(one, ("a", "b"), 10, 1)


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
    assert capsys.readouterr().out.startswith("✓ frame_input_fn feeds 29,305 rows once")
    wrong = [
        (dict(numbers="int64"), "cast the numeric columns"),
        (dict(text_labels=True), "label = 1 for '>50K', 0 for '<=50K'"),
        (dict(epochs=2), "no .repeat()"),
        (dict(shuffle=False), "call .shuffle(len(frame)) before .batch"),
    ]
    for changes, hint in wrong:
        def answer(frame, batch_size=128, shuffle=True, changes=changes):
            options = dict(dict(shuffle=shuffle), **changes)
            return frame_input_fn(frame, batch_size, **options)
        assert hint in told(fails(checks.check_frame_input_fn, answer, train))

    def label_kept(frame, batch_size, shuffle):
        features = dict(frame[["age", "income_bracket"]])
        return tf.data.Dataset.from_tensor_slices((features, np.zeros(len(frame)))).batch(32)
    assert "take 'income_bracket' out" in told(fails(checks.check_frame_input_fn, label_kept,
                                                     train))


def test_check_balanced_input_fn(census_files):
    def plain(files, batch_size):
        return inputs.input_fn(files, batch_size=batch_size)

    def high_only(files, batch_size):
        rows = inputs.input_fn(files, batch_size=batch_size).unbatch()
        return rows.filter(lambda features, label: label == 1).batch(batch_size)

    def short(files, batch_size):
        return inputs.input_fn(files, num_epochs=1, batch_size=batch_size).take(3)
    for answer, hint in ((plain, "sample_from_datasets"), (high_only, "weight 0.5"),
                         (short, "num_epochs=None")):
        assert hint in told(fails(checks.check_balanced_input_fn, answer, [census_files.train]))
