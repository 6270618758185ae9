"""Checks for chapter 4's exercises: a TrainSpec, an EvalSpec, and the plain tf-keras loop
underneath train_and_evaluate, interrupted and resumed."""
import math
from pathlib import Path

from census import inputs, quiet
from census.course.checks.core import CheckFailed, call, count_rows, expect, passed

__all__ = ["check_train_spec", "check_eval_spec", "check_train_with_keras"]


def _ages(path):
    """The first field (age) of every row of a census CSV file, in file order."""
    with open(path) as f:
        return [float(line.split(",", 1)[0]) for line in f if line.strip()]


def _spec(value, cls, what, *hints):
    from census import training
    expect(isinstance(value, getattr(training, cls)),
           f"{what} returned {type(value).__name__}, not a training.{cls}", *hints)
    expect(callable(value.input_fn), f"its input_fn is a {type(value.input_fn).__name__}, "
           "not a function", "train_and_evaluate builds the dataset itself, where it needs "
           "it (on each worker of a cluster): give it a function that builds one",
           "input_fn=lambda: inputs.input_fn(...)")
    return value


def _dataset(spec, what):
    import tensorflow as tf
    dataset = call(spec.input_fn, what=f"{what}.input_fn()")
    expect(isinstance(dataset, tf.data.Dataset), f"{what}.input_fn() returned "
           f"{type(dataset).__name__}, not a tf.data.Dataset",
           "the input_fn returns a dataset of (features, label) batches",
           "return the dataset that inputs.input_fn(...) builds")
    return dataset


def _batches(dataset, max_rows):
    """(batches, rows, ages of every row in order) — reading at most max_rows + 1 rows."""
    batches, ages = 0, []
    try:
        for features, _ in dataset:
            batches += 1
            ages.extend(features["age"].numpy().tolist())
            if len(ages) > max_rows:
                break
    except Exception as error:
        raise CheckFailed(f"reading the dataset failed ({type(error).__name__}: "
                          f"{' '.join(str(error).split())[:160]})",
                          "the dataset should give batches of (features, label), as "
                          "chapter 3's input function does",
                          "build it with inputs.input_fn([file], ...)") from error
    return batches, ages


def check_train_spec(make_train_spec, train_file, epochs, batch_size):
    """make_train_spec(train_file, epochs, batch_size): `epochs` shuffled passes over the
    file, in batches of batch_size, and max_steps = the number of those batches."""
    what = f"make_train_spec(train_file, {epochs}, {batch_size})"
    spec = _spec(call(make_train_spec, train_file, epochs, batch_size, what=what), "TrainSpec",
                 what, "a TrainSpec says what to train on and for how long",
                 "return training.TrainSpec(input_fn=..., max_steps=...)")
    rows = count_rows(train_file)
    steps = math.ceil(rows * epochs / batch_size)
    expect(spec.max_steps != epochs, f"max_steps is {spec.max_steps}: the number of passes",
           "max_steps counts batches (training steps), not passes over the data",
           f"{epochs} passes over {rows:,} rows in batches of {batch_size} is how many "
           "batches? Count the file's lines, multiply, divide, round up")
    expect(spec.max_steps != rows * epochs // batch_size or steps == rows * epochs // batch_size,
           f"max_steps is {spec.max_steps}, one short", "the last, smaller batch is a step too",
           "round up (math.ceil(rows * epochs / batch_size)), don't divide with //")
    expect(spec.max_steps == steps, f"max_steps is {spec.max_steps}, not {steps:,}",
           "training ends when the data does: max_steps is the number of batches the "
           "dataset gives",
           f"max_steps = the number of batches of {batch_size} in {epochs} passes over the "
           f"{rows:,} rows of the file, rounded up")
    with quiet.logs():
        batches, ages = _batches(_dataset(spec, "train_spec"), rows * epochs)
    expect(len(ages) <= rows * epochs, f"the dataset goes on after {epochs} passes over the file",
           "inputs.input_fn repeats forever unless told otherwise: read its arguments",
           f"pass num_epochs={epochs} (the function's epochs argument)")
    expect(len(ages) == rows * epochs, f"the dataset holds {len(ages):,} rows, not {epochs} × "
           f"{rows:,}", f"read the whole file, {epochs} times",
           f"num_epochs={epochs}, and no take()")
    expect(batches == steps, f"{batches} batches instead of {steps}",
           "the batch size is an argument of your function: is it passed on?",
           "inputs.input_fn(..., batch_size=batch_size)")
    expect(ages[:batch_size] != _ages(train_file)[:batch_size],
           "the first batch holds the first rows of the file, in file order",
           "training wants shuffled batches: files are often sorted",
           "shuffle=True (inputs.input_fn's default)")
    passed(f"{steps:,} steps of {batch_size} rows = {epochs} shuffled "
           f"pass{'es' if epochs != 1 else ''} over {rows:,} people")


def check_eval_spec(make_eval_spec, eval_file, every_steps):
    """make_eval_spec(eval_file, every_steps): the whole file once, in order, every
    every_steps steps, with a FinalExporter 'census' and a BestExporter 'best' on AUC."""
    from census import export
    what = f"make_eval_spec(eval_file, {every_steps})"
    spec = _spec(call(make_eval_spec, eval_file, every_steps, what=what), "EvalSpec", what,
                 "an EvalSpec says what to evaluate on, how often, and what to export",
                 "return training.EvalSpec(input_fn=..., steps=..., every_steps=..., "
                 "exporters=[...])")
    rows = count_rows(eval_file)
    with quiet.logs():
        _, ages = _batches(_dataset(spec, "eval_spec"), rows)
    expect(len(ages) <= rows, "the dataset does not end after one pass over the file: each "
           "evaluation would never finish",
           "an evaluation reads the file once; inputs.input_fn repeats forever unless told",
           "pass num_epochs=1")
    expect(len(ages) == rows, f"the dataset holds {len(ages):,} of the file's {rows:,} rows",
           "evaluate on every row of the file, once",
           "num_epochs=1 and no take()")
    expect(ages == _ages(eval_file), "the rows do not come in file order",
           "shuffling an evaluation changes nothing but the time; inputs.input_fn shuffles "
           "by default", "shuffle=False")
    expect(spec.steps is None, f"steps={spec.steps} stops each evaluation after "
           f"{spec.steps} batches", "an evaluation should read until the dataset ends",
           "steps=None reads until the dataset ends: the whole file")
    expect(spec.every_steps == every_steps, f"every_steps is {spec.every_steps}, not "
           f"{every_steps}", "how often to evaluate is an argument of your function",
           "every_steps=every_steps")
    exporters = list(spec.exporters or ())
    by_name = {getattr(e, "name", None): e for e in exporters}
    expect("census" in by_name and "best" in by_name,
           f"the exporters are named {sorted(map(str, by_name))}, not 'census' and 'best'",
           "the first argument of an exporter is its name: its folder under export/",
           "FinalExporter('census', 'JSON') and BestExporter('best', 'JSON', ...)")
    final, best = by_name["census"], by_name["best"]
    expect(type(final) is export.FinalExporter,
           f"'census' is a {type(final).__name__}",
           "'census' holds the model as it is when training ends",
           "export.FinalExporter('census', 'JSON')")
    expect(isinstance(best, export.BestExporter), f"'best' is a {type(best).__name__}",
           "'best' exports only when an evaluation beats every earlier one: chapter 5 has an "
           "exporter for that", "export.BestExporter('best', 'JSON', metric='auc')")
    expect(final.export_format == "JSON" and best.export_format == "JSON",
           f"the formats are {final.export_format} and {best.export_format}",
           "both exports serve JSON clients", "export_format='JSON' (the second argument)")
    expect(best.metric == "auc", f"the BestExporter compares {best.metric!r}",
           "which of the evaluation's metrics decides what is best here?", "metric='auc'")
    expect(best.sign > 0, "the BestExporter keeps the lowest AUC",
           "is a higher AUC better, or a lower one?", "higher_is_better=True")
    expect(len(exporters) == 2, f"{len(exporters)} exporters, not 2",
           "each exporter writes a folder of its own: only the two asked for",
           "exporters=[FinalExporter(...), BestExporter(...)]")
    passed(f"the whole file ({rows:,} rows) in order every {every_steps} steps; the final model "
           "in export/census/, each new best AUC in export/best/")


class _Interrupted(Exception):
    """What the check raises inside the learner's first fit, after its first evaluation: a
    machine taken away mid-run (a preempted VM, a restarted runtime)."""


def _fit_spy(runs):
    """A stand-in for tf-keras' Model.fit that records each call (its arguments, the epochs
    it ran) and interrupts the first one after its first epoch; refuses an evaluation that
    would never end."""
    import inspect

    import tensorflow as tf
    import tf_keras as keras
    original = keras.Model.fit

    class Watch(keras.callbacks.Callback):
        def __init__(self, run, interrupt):
            super().__init__()
            self.run, self.interrupt = run, interrupt

        def on_epoch_begin(self, epoch, logs=None):
            self.run["epochs"].append(epoch)

        def on_epoch_end(self, epoch, logs=None):
            if self.interrupt:
                raise _Interrupted("stopped by the check after the first evaluation")

    def fit(self, *args, **kwargs):
        bound = inspect.signature(original).bind(self, *args, **kwargs)
        options = dict(bound.arguments)
        run = {"epochs": [], "callbacks": list(options.get("callbacks") or []),
               "validation_steps": options.get("validation_steps")}
        runs.append(run)
        validation = options.get("validation_data")
        endless = (isinstance(validation, tf.data.Dataset) and
                   validation.cardinality() == tf.data.INFINITE_CARDINALITY)
        expect(not endless or options.get("validation_steps"),
               "the validation data never ends: the first evaluation would run forever",
               "an evaluation reads the validation file once; inputs.input_fn repeats "
               "forever unless told", "inputs.input_fn([validation_file], num_epochs=1, "
               "shuffle=False, batch_size=1000)")
        options["callbacks"] = run["callbacks"] + [Watch(run, interrupt=len(runs) == 1)]
        return original(**options)
    return original, fit


def check_train_with_keras(train_with_keras, job_dir, train_file, validation_file, steps):
    """train_with_keras(job_dir, train_file, validation_file, steps) → the trained model: the
    loop under train_and_evaluate, written with model.fit: `steps` steps in two intervals, an
    evaluation on the whole validation file after each, a checkpoint after each, the metrics
    in job_dir/eval/metrics.csv, a backup in job_dir/backup.

    The check stops the first run after its first evaluation, as a preempted machine would,
    then calls the function again: the rerun must finish the job, not start over."""
    import pandas as pd
    import tf_keras as keras

    from census import course
    course.fresh_dir(job_dir)
    job = Path(job_dir)
    what = f"train_with_keras(job_dir, train_file, validation_file, {steps})"
    crash_hints = [("No such file or directory", (
        "a callback cannot write into a folder that does not exist yet",
        "create job_dir/eval first: os.makedirs(os.path.join(job_dir, 'eval'), exist_ok=True)"))]
    runs = []
    original, spy = _fit_spy(runs)
    keras.Model.fit = spy
    try:
        try:
            with quiet.logs():
                call(train_with_keras, job_dir, train_file, validation_file, steps, what=what,
                     hint=crash_hints)
            interrupted = False
        except CheckFailed as failure:
            if not isinstance(failure.__cause__, _Interrupted):
                raise
            interrupted = True
        expect(runs, f"{what} never called fit",
               "the loop under train_and_evaluate is one call of the tf-keras model's fit "
               "method", "model.build_model(decay_steps=steps).fit(train_data, epochs=2, "
               "steps_per_epoch=steps // 2, validation_data=…, callbacks=[…])")
        expect(interrupted, "the check stopped the first run after its first evaluation, "
               f"and {what} carried on", "let an error inside fit reach the caller",
               "no try/except around fit")
        backups = [c for c in runs[0]["callbacks"]
                   if isinstance(c, keras.callbacks.BackupAndRestore)]
        resume_hints = ("a rerun can resume only from a copy of the training state that the "
                        "first run left in the job dir: a callback writes it after each "
                        "epoch and reads it back when fit starts",
                        "keras.callbacks.BackupAndRestore(os.path.join(job_dir, 'backup'))")
        expect(backups, "after the interruption the job dir holds no backup of the run",
               *resume_hints)
        where = Path(backups[0].backup_dir).resolve()
        expect(where == (job / "backup").resolve(),
               f"the backup is in {course.rel(str(where))}, not in the job dir",
               "everything a job leaves belongs in its job dir: the rerun finds the backup "
               "there", "BackupAndRestore(os.path.join(job_dir, 'backup'))")
        with quiet.logs():
            net = call(train_with_keras, job_dir, train_file, validation_file, steps,
                       what=what, hint=crash_hints)
    finally:
        keras.Model.fit = original
    expect(len(runs) == 2, f"the rerun called fit {len(runs) - 1} times",
           "each run is one call of fit", "call fit once")
    expect(runs[1]["epochs"] != [0, 1], "the rerun started over from the first epoch",
           *resume_hints)
    expect(isinstance(net, keras.Model), f"{what} returned {type(net).__name__}, not the model",
           "the caller wants the trained model back", "return the model after fit")
    done = int(net.optimizer.iterations.numpy())
    expect(done == steps, f"the model was trained {done} steps in all, not {steps}",
           "two evaluations, halfway and at the end: fit's epochs and steps_per_epoch "
           "decide both", "epochs=2, steps_per_epoch=steps // 2")
    csv_path = job / "eval" / "metrics.csv"
    expect(csv_path.is_file(), f"no {course.rel(str(csv_path))}",
           "a callback writes each epoch's metrics to a CSV file",
           "keras.callbacks.CSVLogger(os.path.join(job_dir, 'eval', 'metrics.csv'), "
           "append=True), after os.makedirs of the eval folder")
    curves = pd.read_csv(csv_path)
    expect(len(curves) != 1 or runs[1]["epochs"] != [1],
           "metrics.csv holds one evaluation: the rerun wrote over the first one's row",
           "CSVLogger starts a new file at each fit unless told to add to it",
           "CSVLogger(path, append=True)")
    expect(len(curves) == 2, f"metrics.csv holds {len(curves)} evaluation(s), not 2",
           "one row per epoch: two epochs, one evaluation at the end of each",
           "epochs=2, steps_per_epoch=steps // 2")
    expect("val_auc" in curves.columns, f"metrics.csv has the columns {list(curves.columns)}: "
           "no evaluation on the validation split",
           "fit evaluates at the end of each epoch what it is given as validation data",
           "validation_data=inputs.input_fn([validation_file], num_epochs=1, shuffle=False, "
           "batch_size=1000)")
    with quiet.logs():
        scores = net.evaluate(inputs.input_fn([validation_file], num_epochs=1, shuffle=False,
                                              batch_size=1000), verbose=0, return_dict=True)
    expect(runs[-1]["validation_steps"] is None,
           f"validation_steps={runs[-1]['validation_steps']} stops each evaluation after "
           f"{runs[-1]['validation_steps']} batches", "an evaluation should read until the "
           "validation data ends", "leave out validation_steps")
    logged = float(curves["val_auc"].iloc[-1])
    same = (abs(logged - scores["auc"]) < 1e-4 and
            abs(float(curves["val_loss"].iloc[-1]) - scores["loss"]) < 1e-4)
    expect(same,
           f"the last evaluation logged AUC (keras) {logged:.4f}; on the whole validation "
           f"file the model scores {scores['auc']:.4f}", "each evaluation reads every row of the "
           "validation file, once", "validation_data=inputs.input_fn([validation_file], "
           "num_epochs=1, shuffle=False) and no validation_steps")
    folder = job / "checkpoints"
    saved = sorted({p.name.split(".")[0] for p in folder.iterdir() if p.name != "checkpoint"}
                   ) if folder.is_dir() else []
    expect(saved, f"no checkpoint in {course.rel(str(folder))}",
           "a callback saves the weights after each epoch: the files an evaluator or a "
           "later run reads", "keras.callbacks.ModelCheckpoint(os.path.join(job_dir, "
           "'checkpoints', 'ckpt-{epoch:04d}'), save_weights_only=True)")
    expect(len(saved) == 2, f"checkpoints/ holds {saved}: not one checkpoint per evaluation",
           "each checkpoint needs a name of its own, or the next one replaces it",
           "name them after the epoch: 'ckpt-{epoch:04d}'")
    passed(f"{steps} steps in two intervals; stopped after the first, the rerun resumed at "
           f"epoch 2 (BackupAndRestore); checkpoints {', '.join(saved)}; metrics.csv keeps "
           f"both evaluations: AUC (keras, 200 thresholds) {logged:.4f} on all "
           f"{count_rows(validation_file):,} validation rows")
