"""Checks for chapter 4's exercises: a TrainSpec, an EvalSpec, and one train_and_evaluate run."""
import math
from pathlib import Path

from census import quiet
from census.course.checks.core import CheckFailed, call, expect, passed

__all__ = ["check_train_spec", "check_eval_spec", "check_train"]


def _lines(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def _ages(path):
    """The first field (age) of every row of a census CSV file, in file order."""
    with open(path) as f:
        return [float(line.split(",", 1)[0]) for line in f if line.strip()]


def _spec(value, cls, what, hint):
    from census import training
    expect(isinstance(value, getattr(training, cls)),
           f"{what} returned {type(value).__name__}, not a training.{cls}", hint)
    expect(callable(value.input_fn), f"its input_fn is a {type(value.input_fn).__name__}, "
           "not a function", "pass a function that builds the dataset, e.g. "
           "input_fn=lambda: inputs.input_fn(...): train_and_evaluate calls it where it "
           "needs the data")
    return value


def _dataset(spec, what):
    import tensorflow as tf
    dataset = call(spec.input_fn, what=f"{what}.input_fn()")
    expect(isinstance(dataset, tf.data.Dataset), f"{what}.input_fn() returned "
           f"{type(dataset).__name__}, not a tf.data.Dataset",
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
                          f"{' '.join(str(error).split())[:160]})", "build it with "
                          "inputs.input_fn([file], ...): batches of (features, label)") from error
    return batches, ages


def check_train_spec(make_train_spec, train_file, epochs, batch_size):
    """make_train_spec(train_file, epochs, batch_size): `epochs` shuffled passes over the
    file, in batches of batch_size, and max_steps = the number of those batches."""
    what = f"make_train_spec(train_file, {epochs}, {batch_size})"
    spec = _spec(call(make_train_spec, train_file, epochs, batch_size, what=what), "TrainSpec",
                 what, "return training.TrainSpec(input_fn=..., max_steps=...)")
    rows = _lines(train_file)
    steps = math.ceil(rows * epochs / batch_size)
    expect(spec.max_steps != epochs, f"max_steps is {spec.max_steps}: the number of passes",
           "max_steps counts batches (training steps), not passes over the data: "
           f"{epochs} passes over {rows:,} rows in batches of {batch_size} is how many batches?")
    expect(spec.max_steps != rows * epochs // batch_size or steps == rows * epochs // batch_size,
           f"max_steps is {spec.max_steps}, one short", "the last, smaller batch is a step too: "
           "round up (math.ceil), don't divide with //")
    expect(spec.max_steps == steps, f"max_steps is {spec.max_steps}, not {steps:,}",
           f"max_steps = the number of batches of {batch_size} in {epochs} passes over the "
           f"{rows:,} rows of the file, rounded up")
    with quiet.logs():
        batches, ages = _batches(_dataset(spec, "train_spec"), rows * epochs)
    expect(len(ages) <= rows * epochs, f"the dataset goes on after {epochs} passes over the file",
           f"inputs.input_fn repeats forever unless told: pass num_epochs={epochs}")
    expect(len(ages) == rows * epochs, f"the dataset holds {len(ages):,} rows, not {epochs} × "
           f"{rows:,}", f"read the whole file, {epochs} times: num_epochs={epochs}, no take()")
    expect(batches == steps, f"{batches} batches instead of {steps}",
           f"use batches of {batch_size} rows: batch_size={batch_size}")
    expect(ages[:batch_size] != _ages(train_file)[:batch_size],
           "the first batch holds the first rows of the file, in file order",
           "training wants shuffled batches: shuffle=True (inputs.input_fn's default)")
    passed(f"{steps:,} steps of {batch_size} rows = {epochs} shuffled "
           f"pass{'es' if epochs != 1 else ''} over {rows:,} people")


def check_eval_spec(make_eval_spec, eval_file, every_steps):
    """make_eval_spec(eval_file, every_steps): the whole file once, in order, every
    every_steps steps, with a FinalExporter 'census' and a BestExporter 'best' on AUC."""
    from census import export
    what = f"make_eval_spec(eval_file, {every_steps})"
    spec = _spec(call(make_eval_spec, eval_file, every_steps, what=what), "EvalSpec", what,
                 "return training.EvalSpec(input_fn=..., steps=..., every_steps=..., "
                 "exporters=[...])")
    rows = _lines(eval_file)
    with quiet.logs():
        _, ages = _batches(_dataset(spec, "eval_spec"), rows)
    expect(len(ages) <= rows, "the dataset does not end after one pass over the file: each "
           "evaluation would never finish",
           "inputs.input_fn repeats forever unless told: pass num_epochs=1")
    expect(len(ages) == rows, f"the dataset holds {len(ages):,} of the file's {rows:,} rows",
           "evaluate on every row of the file: num_epochs=1 and no take()")
    expect(ages == _ages(eval_file), "the rows do not come in file order",
           "shuffling an evaluation changes nothing but the time: shuffle=False")
    expect(spec.steps is None, f"steps={spec.steps} stops each evaluation after "
           f"{spec.steps} batches", "steps=None reads until the dataset ends: the whole file")
    expect(spec.every_steps == every_steps, f"every_steps is {spec.every_steps}, not "
           f"{every_steps}", f"evaluate every {every_steps} steps: every_steps=every_steps")
    exporters = list(spec.exporters or ())
    by_name = {getattr(e, "name", None): e for e in exporters}
    expect("census" in by_name and "best" in by_name,
           f"the exporters are named {sorted(map(str, by_name))}, not 'census' and 'best'",
           "the first argument of an exporter is its name (its folder under export/): "
           "FinalExporter('census', 'JSON') and BestExporter('best', 'JSON', ...)")
    final, best = by_name["census"], by_name["best"]
    expect(type(final) is export.FinalExporter,
           f"'census' is a {type(final).__name__}", "the final model: export.FinalExporter")
    expect(isinstance(best, export.BestExporter), f"'best' is a {type(best).__name__}",
           "to keep the best model: export.BestExporter")
    expect(final.export_format == "JSON" and best.export_format == "JSON",
           f"the formats are {final.export_format} and {best.export_format}",
           "both exports serve JSON clients: export_format='JSON'")
    expect(best.metric == "auc", f"the BestExporter compares {best.metric!r}",
           "compare the evaluations' AUC: metric='auc'")
    expect(best.sign > 0, "the BestExporter keeps the lowest AUC",
           "a higher AUC is better: higher_is_better=True")
    expect(len(exporters) == 2, f"{len(exporters)} exporters, not 2",
           "only the two exporters: [FinalExporter(...), BestExporter(...)]")
    passed(f"the whole file ({rows:,} rows) in order every {every_steps} steps; the final model "
           "in export/census/, each new best AUC in export/best/")


def _export_auc(export_dir, eval_file):
    """The AUC of an export's logits on every row of eval_file, computed as the model does."""
    import tensorflow as tf
    import tf_keras as keras
    from census import data, instances, schema
    frame = data.load_frame(eval_file)
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    columns = instances.to_tensors("JSON", frame[list(schema.INPUT_COLUMNS)].to_dict("records"))
    labels = (frame[schema.LABEL_COLUMN].astype(str).str.strip().str.rstrip(".") ==
              schema.HIGH).to_numpy()
    auc = keras.metrics.AUC(from_logits=True)
    auc.update_state(labels, signature(**columns)["logits"][:, 0])
    return float(auc.result())


def check_train(train, job_dir, train_file, eval_file, steps):
    """train(job_dir, train_file, eval_file, steps): train steps steps, evaluate twice on the
    whole eval file, export the final model (JSON) under export/census, return the metrics."""
    import pandas as pd
    import tensorflow as tf
    from census import course, export, schema
    course.fresh_dir(job_dir)  # a left-over backup would make train_and_evaluate resume
    job = Path(job_dir)
    with quiet.logs():
        metrics = call(train, job_dir, train_file, eval_file, steps,
                       what=f"train(job_dir, train_file, eval_file, {steps})")
    expect(isinstance(metrics, dict) and "auc" in metrics,
           f"train returned {type(metrics).__name__}, not the metrics",
           "return what training.train_and_evaluate returns")
    expect((job / "eval" / "metrics.csv").is_file(), "nothing was written in job_dir",
           "give train_and_evaluate the job_dir you received")
    expect(metrics.get("global_step") == steps, f"training took {metrics.get('global_step')} "
           f"steps, not {steps}", "TrainSpec(..., max_steps=steps)")
    curves = pd.read_csv(job / "eval" / "metrics.csv")
    expect(len(curves) == 2, f"{len(curves)} evaluation(s) instead of 2",
           f"to evaluate halfway and at the end: every_steps=steps // 2 ({steps // 2})")
    versions = export.list_versions(str(job / "export" / "census"))
    others = sorted(p.name for p in (job / "export").iterdir()) if (job / "export").is_dir() else []
    expect(len(versions) == 1, f"export/census/ holds {len(versions)} version(s); "
           f"export/ holds {others}", "one export when training ends, named 'census': "
           "exporters=[export.FinalExporter('census', 'JSON')]")
    signature = tf.saved_model.load(versions[0]).signatures["serving_default"]
    inputs = sorted(signature.structured_input_signature[1])
    expect(inputs == sorted(schema.INPUT_COLUMNS), f"the export takes {inputs}",
           "export for JSON clients: FinalExporter('census', 'JSON')")
    auc = _export_auc(versions[0], eval_file)
    expect(abs(auc - metrics["auc"]) < 2e-3,
           f"the AUC returned ({metrics['auc']:.4f}) is not the AUC on the whole eval file "
           f"({auc:.4f})", "evaluate on every row of eval_file, in order: "
           "inputs.input_fn([eval_file], num_epochs=1, shuffle=False) and steps=None")
    passed(f"{steps} steps, 2 evaluations, 1 export; AUC {metrics['auc']:.4f} on all "
           f"{_lines(eval_file):,} rows of the eval file")
