"""The checks of chapters 4-6 (census.course.checks.training, census.course.checks.export):
realistic wrong answers fail with hints that lead (the first) before they name the fix (the
last)."""
import itertools
import json

import pytest
import tensorflow as tf

from census import export, inputs, schema, training
from census.course import checks
from conftest import REPO, fails, leads_then_tells, told

pytestmark = pytest.mark.slow  # the checks' real models, trained


@pytest.fixture(scope="module")
def small_eval(census_files, tmp_path_factory):
    """The first 600 rows of the validation split: evaluations that take no time."""
    path = tmp_path_factory.mktemp("small") / "eval.csv"
    with open(census_files.validation) as f:
        path.write_text("".join(itertools.islice(f, 600)))
    return str(path)


@pytest.fixture(scope="module")
def people():
    return [json.loads(line) for line in open(REPO / "test.json")]


# --- chapter 4 ------------------------------------------------------------------------------

def test_stub_is_not_answered(census_files):
    def make_train_spec(train_file, epochs, batch_size):
        raise NotImplementedError()
    with pytest.raises(checks.NotAnswered):
        checks.check_train_spec(make_train_spec, census_files.train, 1, 1000)


def train_spec(num_epochs, shuffle=True, round_up=True):
    def make_train_spec(train_file, epochs, batch_size):
        rows = sum(1 for _ in open(train_file))
        steps = -(-rows * epochs // batch_size) if round_up else rows * epochs // batch_size
        return training.TrainSpec(
            lambda: inputs.input_fn([train_file], num_epochs=num_epochs(epochs),
                                    shuffle=shuffle, batch_size=batch_size), steps)
    return make_train_spec


@pytest.mark.parametrize("answer, fix", [
    (train_spec(lambda epochs: epochs, round_up=False), "round up"),
    (train_spec(lambda epochs: None), "num_epochs=1"),
    (train_spec(lambda epochs: epochs, shuffle=False), "shuffle=True"),
])
def test_train_spec_mistakes(census_files, answer, fix):
    error = fails(checks.check_train_spec, answer, census_files.train, 1, 1000)
    assert leads_then_tells(error, fix), error.hints


def test_train_spec_right(census_files, capsys):
    checks.check_train_spec(train_spec(lambda epochs: epochs), census_files.train, 1, 1000)
    assert capsys.readouterr().out.startswith("✓ 30 steps")


def eval_spec(shuffle=False, num_epochs=1, best=None):
    def make_eval_spec(eval_file, every_steps):
        return training.EvalSpec(
            lambda: inputs.input_fn([eval_file], num_epochs=num_epochs, shuffle=shuffle,
                                    batch_size=100),
            every_steps=every_steps,
            exporters=[export.FinalExporter("census", "JSON"),
                       best or export.BestExporter("best", "JSON", metric="auc")])
    return make_eval_spec


@pytest.mark.parametrize("answer, fix", [
    (eval_spec(shuffle=True), "shuffle=False"),  # inputs.input_fn shuffles by default
    (eval_spec(num_epochs=None), "num_epochs=1"),
    (eval_spec(best=export.BestExporter("best", "JSON", metric="loss")), "metric='auc'"),
    (eval_spec(best=export.LatestExporter("best", "JSON")), "BestExporter"),
])
def test_eval_spec_mistakes(small_eval, answer, fix):
    error = fails(checks.check_eval_spec, answer, small_eval, 50)
    assert leads_then_tells(error, fix), error.hints


def test_eval_spec_right(small_eval, capsys):
    checks.check_eval_spec(eval_spec(), small_eval, 50)
    assert "600 rows" in capsys.readouterr().out


def train_with_keras(append=True, backup=True, validation_epochs=1, validation_steps=None,
                     epochs=2, give_back=True):
    """The plain tf-keras loop, with knobs for each mistake."""
    import os

    import tf_keras as keras

    from census import model

    def train(job_dir, train_file, validation_file, steps):
        net = model.build_model(decay_steps=steps)
        os.makedirs(os.path.join(job_dir, "eval"), exist_ok=True)
        callbacks = [keras.callbacks.ModelCheckpoint(
                         os.path.join(job_dir, "checkpoints", "ckpt-{epoch:04d}"),
                         save_weights_only=True),
                     keras.callbacks.CSVLogger(os.path.join(job_dir, "eval", "metrics.csv"),
                                               append=append)]
        if backup:
            callbacks.insert(0, keras.callbacks.BackupAndRestore(os.path.join(job_dir, "backup")))
        net.fit(inputs.input_fn([train_file], batch_size=128), epochs=epochs,
                steps_per_epoch=steps // epochs, verbose=0, callbacks=callbacks,
                validation_data=inputs.input_fn([validation_file], num_epochs=validation_epochs,
                                                shuffle=False, batch_size=100),
                validation_steps=validation_steps)
        return net if give_back else None
    return train


def test_train_with_keras_right(census_files, small_eval, tmp_path, capsys):
    checks.check_train_with_keras(train_with_keras(), str(tmp_path / "job"), census_files.train,
                                  small_eval, 4)
    out = capsys.readouterr().out
    assert out.startswith("✓ 4 steps in two intervals; stopped after the first, the rerun "
                          "resumed at epoch 2")
    assert "checkpoints ckpt-0001, ckpt-0002" in out and "all 600 validation rows" in out


@pytest.mark.parametrize("answer, fix", [
    (train_with_keras(append=False), "CSVLogger(path, append=True)"),
    (train_with_keras(backup=False), "BackupAndRestore(os.path.join(job_dir, 'backup'))"),
    (train_with_keras(validation_epochs=None), "num_epochs=1"),
    (train_with_keras(validation_steps=2), "leave out validation_steps"),
    (train_with_keras(epochs=1), "epochs=2, steps_per_epoch=steps // 2"),
    (train_with_keras(give_back=False), "return the model after fit"),
])
def test_train_with_keras_mistakes(census_files, small_eval, tmp_path, answer, fix):
    error = fails(checks.check_train_with_keras, answer, str(tmp_path / "job"),
                  census_files.train, small_eval, 4)
    assert leads_then_tells(error, fix), error.hints


def test_train_with_keras_that_never_fits(tmp_path):
    def train(job_dir, train_file, validation_file, steps):
        pass  # forgot to train
    error = fails(checks.check_train_with_keras, train, str(tmp_path), "x", "y", 4)
    assert "never called fit" in error.problem and "one call" in error.hints[0]


# --- chapter 5 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rows(census_files):
    with open(census_files.validation) as f:
        return [line.rsplit(",", 1)[0] for line in itertools.islice(f, 20)]


def csv_parser(defaults_for_numbers=(0.0,), keep=schema.INPUT_COLUMNS):
    def csv_features(rows):
        names = [c for c in schema.CSV_COLUMNS if c != schema.LABEL_COLUMN]
        defaults = [list(defaults_for_numbers) if c in schema.NUMERIC_COLUMNS + ("fnlwgt",)
                    else [""] for c in names]
        fields = dict(zip(names, tf.io.decode_csv(rows, record_defaults=defaults)))
        return {c: fields[c] for c in keep}
    return csv_features


def eager_csv_features(rows):  # right values, but Python code that cannot run in a graph
    lines = [row.decode().split(", ") for row in rows.numpy()]
    names = [c for c in schema.CSV_COLUMNS if c != schema.LABEL_COLUMN]
    return {c: tf.constant([line[names.index(c)] for line in lines],
                           dtype=schema.INPUT_DTYPES[c]) if c not in schema.NUMERIC_COLUMNS
            else tf.constant([float(line[names.index(c)]) for line in lines], tf.float32)
            for c in schema.INPUT_COLUMNS}


@pytest.mark.parametrize("answer, fix", [
    (csv_parser(keep=schema.INPUT_COLUMNS + ("fnlwgt",)), "keep only schema.INPUT_COLUMNS"),
    (csv_parser(defaults_for_numbers=(0,)), "[0.0]"),
    (eager_csv_features, "TensorFlow ops only"),
])
def test_csv_features_mistakes(rows, answer, fix):
    error = fails(checks.check_csv_features, answer, rows)
    assert leads_then_tells(error, fix), error.hints


@pytest.fixture(scope="module")
def example_model(trained_job, tmp_path_factory):
    """(the trained Keras model, its EXAMPLE export)."""
    from census import model
    job_dir, _ = trained_job
    net = model.build_model()
    net.load_weights(tf.train.latest_checkpoint(str(job_dir / "checkpoints"))).expect_partial()
    return net, export.export_model(net, str(tmp_path_factory.mktemp("ex")), "EXAMPLE")


def example_maker(number_kind="float_list", serialize=True):
    def to_example(person):
        feature = {}
        for c in schema.INPUT_COLUMNS:
            if c in schema.NUMERIC_COLUMNS and number_kind == "float_list":
                feature[c] = tf.train.Feature(float_list=tf.train.FloatList(value=[person[c]]))
            elif c in schema.NUMERIC_COLUMNS:
                feature[c] = tf.train.Feature(int64_list=tf.train.Int64List(value=[person[c]]))
            else:
                feature[c] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[person[c].encode()]))
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        return example.SerializeToString() if serialize else example
    return to_example


@pytest.mark.parametrize("answer, fix", [
    (example_maker(number_kind="int64_list"), "FloatList"),
    (example_maker(serialize=False), "SerializeToString"),
])
def test_to_example_mistakes(example_model, people, answer, fix):
    net, path = example_model
    error = fails(checks.check_to_example, answer, path, net, people[0])
    assert leads_then_tells(error, fix), error.hints


def test_to_example_right(example_model, people, capsys):
    net, path = example_model
    checks.check_to_example(example_maker(), path, net, dict(people[1], occupation="?"))
    assert "P(>50K)" in capsys.readouterr().out


def best_exporter(compare=None, name=lambda callback, epoch: str(
        int(callback.model.optimizer.iterations.numpy())), instance=True):
    """A best_exporter answer; `compare(value, best, higher_is_better)` says whether to export
    (default: the right rule), `name` names the folder."""
    import tf_keras as keras

    def right(value, best, higher):
        return best is None or (value > best if higher else value < best)

    def make(export_dir, export_fn, monitor="val_loss", higher_is_better=False):
        class BestExport(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.best = None

            def on_epoch_end(self, epoch, logs=None):
                if (compare or right)(logs[monitor], self.best, higher_is_better):
                    self.best = logs[monitor]
                    export_fn(self.model, f"{export_dir}/{name(self, epoch)}")
        return BestExport() if instance else BestExport
    return make


@pytest.mark.parametrize("answer, fix", [
    (best_exporter(compare=lambda value, best, higher: True), "export only when"),
    (best_exporter(compare=lambda value, best, higher: best is None or value > best),
     "with < otherwise"),
])
def test_best_exporter_mistakes(census_files, answer, fix):
    """In a real fit whose validation loss climbs after step 100: a callback exporting at
    every evaluation, or at each new highest loss, is told what it did and how to mend it."""
    error = fails(checks.check_best_exporter, answer, census_files.train,
                  census_files.validation)
    assert leads_then_tells(error, fix), error.hints
    assert "beat every earlier one at [1, 2]" in error.problem  # steps 50 and 100


def test_best_exporter_returning_its_class(census_files):
    error = fails(checks.check_best_exporter, best_exporter(instance=False), census_files.train,
                  census_files.validation)
    assert "returned the class BestExport" in error.problem
    assert told(error) == "return BestExport() (an instance)"


def test_best_exporter_right(census_files, capsys):
    checks.check_best_exporter(best_exporter(), census_files.train, census_files.validation)
    out = capsys.readouterr().out
    assert out.startswith("✓") and "exported at steps [50, 100] on val_loss" in out, out


# --- chapter 6 ------------------------------------------------------------------------------

def probability(pick, numbers=tf.float32):
    def probability_over_50k(export_dir, person):
        serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
        outputs = serve(**{c: tf.constant([person[c]], dtype=numbers if c in
                                          schema.NUMERIC_COLUMNS else tf.string)
                           for c in schema.INPUT_COLUMNS})
        return pick(outputs)
    return probability_over_50k


@pytest.mark.parametrize("answer, fix", [
    (probability(lambda out: float(out["probabilities"][0, 0])), "take logistic"),
    (probability(lambda out: out["logistic"].numpy()), "one plain number"),
    (probability(lambda out: float(out["logistic"][0, 0]), numbers=tf.int32),
     "tf.constant([float(value)], tf.float32)"),
])
def test_probability_mistakes(export_dir, people, answer, fix):
    error = fails(checks.check_probability_over_50k, answer, export_dir, people[0])
    assert leads_then_tells(error, fix), error.hints


@pytest.mark.parametrize("answer, fix", [
    (lambda p: ";".join(f"{c}={[p[c]]}" for c in schema.INPUT_COLUMNS), "double quotes"),
    (lambda p: ",".join(f'{c}=["{p[c]}"]' for c in schema.INPUT_COLUMNS), "';', not ','"),
    (lambda p: ";".join(f"{c}={p[c]}" if c in schema.NUMERIC_COLUMNS else f'{c}=["{p[c]}"]'
                        for c in schema.INPUT_COLUMNS), "in a list"),
])
def test_input_exprs_mistakes(export_dir, people, answer, fix):
    error = fails(checks.check_input_exprs, answer, export_dir, people[0])
    assert leads_then_tells(error, fix), error.hints


def test_input_exprs_right(export_dir, people, capsys):
    exprs = lambda p: ";".join(f"{c}=[{json.dumps(p[c])}]" for c in schema.INPUT_COLUMNS)  # noqa: E731
    checks.check_input_exprs(exprs, export_dir, people[1])
    assert "13 inputs" in capsys.readouterr().out


def doubts(export_dir, people):
    from census import predict
    return abs(predict.predict(export_dir, people)["logistic"][:, 0] - 0.5)


@pytest.mark.parametrize("answer, fix", [
    (lambda d, people: int(doubts(d, people).argmin()), "not their position"),
    (lambda d, people: people[int(doubts(d, people).argmax())], "not the largest"),
])
def test_least_sure_mistakes(export_dir, people, census_files, answer, fix):
    from census import data
    crowd = people + data.load_frame(census_files.validation).head(30)[
        list(schema.INPUT_COLUMNS)].to_dict("records")
    error = fails(checks.check_least_sure, answer, export_dir, crowd)
    assert leads_then_tells(error, fix), error.hints
