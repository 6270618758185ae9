"""Train, evaluate and export in one call: the 2017 `train_and_evaluate`, packaged (chapter 4).

`TrainSpec` says what to train on and for how long; `EvalSpec` says what to evaluate on, how
often, and which exporters to run (`census.export`: FinalExporter, LatestExporter,
BestExporter). `train_and_evaluate` is plain tf-keras underneath, the code chapter 4 shows:
the model built in the scope of the strategy TF_CONFIG calls for (`census.distribute`), then
`model.fit` for `max_steps` steps in evaluation intervals, with BackupAndRestore,
ModelCheckpoint, TensorBoard and CSVLogger in the job dir, and the exporters after each
evaluation. Rerun into the same job dir, it resumes from the last evaluation, as the 2017
Estimator resumed from its model_dir: the backup is kept when training ends (BackupAndRestore's
`delete_checkpoint=False`), so a finished run is not trained again.
"""
import dataclasses
import math
import os
import sys
from typing import Callable, Optional, Sequence

import tensorflow as tf
import tf_keras as keras

from census.distribute import evaluation, strategy as distribution, tf_config


def _check_count(spec, field, value, optional=False):
    """A spec's count must be a whole number >= 1 (or None where allowed), as tf.estimator's
    specs checked theirs when built."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{spec}.{field} must be a whole number of at least 1"
                         f"{' or None' if optional else ''}, got {value!r}")


@dataclasses.dataclass
class TrainSpec:
    """What to train on and for how long (2017: `tf.estimator.TrainSpec`): `input_fn()` gives
    an endless tf.data.Dataset of (features, label) batches (`census.inputs.input_fn`);
    `max_steps` batches in all. Raises ValueError for a count below 1."""
    input_fn: Callable[[], tf.data.Dataset]
    max_steps: int

    def __post_init__(self):
        _check_count("TrainSpec", "max_steps", self.max_steps)


@dataclasses.dataclass
class EvalSpec:
    """What to evaluate on, how often, and what to export (2017: `tf.estimator.EvalSpec`;
    `every_steps` stands for its `throttle_secs`, counted in steps). `input_fn()` gives the
    evaluation batches; `steps` batches per evaluation (None: until the dataset ends);
    `exporters` run after each evaluation and at the end. Raises ValueError for a count
    below 1."""
    input_fn: Callable[[], tf.data.Dataset]
    steps: Optional[int] = None  # batches per evaluation; None: until the dataset ends
    every_steps: int = 500  # evaluate (and back up, and run exporters) this often
    exporters: Sequence = ()  # census.export: FinalExporter, LatestExporter, BestExporter
    name: Optional[str] = None  # evaluation results go to <job_dir>/eval[_name]/

    def __post_init__(self):
        _check_count("EvalSpec", "steps", self.steps, optional=True)
        _check_count("EvalSpec", "every_steps", self.every_steps)



class RunExporters(keras.callbacks.Callback):
    """Runs each exporter after every evaluation (the end of each Keras 'epoch'); `paths`
    holds what they wrote."""

    def __init__(self, exporters, job_dir):
        super().__init__()
        self.exporters, self.job_dir, self.paths = exporters, job_dir, []

    def on_epoch_end(self, epoch, logs=None):
        """After an evaluation: each exporter's `after_eval`, with its metrics."""
        metrics = eval_metrics(logs)
        for exporter in self.exporters:
            self.paths.append(exporter.after_eval(self.model, self.job_dir, metrics))


class Resume(keras.callbacks.Callback):
    """Says where training starts when BackupAndRestore (before it in the callbacks) has
    restored a backup: "resuming at step N of M" on stderr."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_begin(self, logs=None):
        """After the restore: the optimizer's step count is the run's."""
        step = int(self.model.optimizer.iterations.numpy())
        if step:
            done = "; nothing left to train" if step >= self.total_steps else ""
            print(f"train_and_evaluate: resuming at step {step} of {self.total_steps}{done}",
                  file=sys.stderr, flush=True)


def last_row_metrics(path):
    """The last evaluation CSVLogger wrote to `path` (eval/metrics.csv): {metric: float},
    without the `val_` prefix; {} if there is none."""
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    return eval_metrics(dict(zip(rows[0], map(float, rows[-1])))) if len(rows) > 1 else {}


def eval_metrics(logs):
    """Keras's `val_`-prefixed logs → {metric: float}, without the prefix."""
    return {k[len("val_"):]: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}


def evaluation_schedule(train_spec, eval_spec):
    """(number of evaluations, steps between them): whole intervals covering max_steps."""
    evaluations = max(1, math.ceil(train_spec.max_steps / eval_spec.every_steps))
    return evaluations, math.ceil(train_spec.max_steps / evaluations)


def train_and_evaluate(model_fn, train_spec, eval_spec, job_dir, verbose=2, strategy=None,
                       tensorboard_dir=None):
    """Build `model_fn()` (a compiled Keras model) under the strategy TF_CONFIG calls for,
    train `train_spec.max_steps` steps (rounded up to whole evaluation intervals), evaluate
    every `eval_spec.every_steps`, run the exporters, and return the last evaluation's
    metrics ({"loss", "accuracy", "auc": float}, plus `global_step`: int and `exports`: the
    paths written, on the chief only; `auc` is keras's, 200 thresholds: approximate). Rerun
    into the same job dir, it resumes from the last evaluation; a run already at max_steps is
    not trained again: its last evaluation's metrics and newest exports are returned. An
    evaluator task (TF_CONFIG) evaluates the chief's checkpoints instead. `strategy`: the
    tf.distribute strategy to train under, default the one TF_CONFIG calls for (made before
    any TensorFlow op runs, as MultiWorkerMirroredStrategy requires). `tensorboard_dir`: where
    the chief's TensorBoard logs go (default `<job_dir>/logs`; Vertex AI's
    AIP_TENSORBOARD_LOG_DIR). Raises TFConfigError for a TF_CONFIG it cannot run with."""
    evaluations, steps_per_eval = evaluation_schedule(train_spec, eval_spec)
    role, index, _ = tf_config.cluster_role()
    if role == "evaluator":
        return evaluation.evaluate_checkpoints(model_fn, eval_spec.input_fn, eval_spec.steps,
                                               evaluations, steps_per_eval, job_dir)
    strategy = distribution.strategy_from_tf_config() if strategy is None else strategy
    chief = tf_config.is_chief()
    # Non-chief workers of a MultiWorkerMirrored cluster must take part in every collective
    # step, exports included, but write their copies somewhere private.
    out_dir = job_dir if chief else os.path.join(job_dir, "workers", str(index))
    pss = isinstance(strategy, tf.distribute.ParameterServerStrategy)
    with strategy.scope():
        model = model_fn()
    if pss:
        train_data = keras.utils.experimental.DatasetCreator(lambda _: train_spec.input_fn())
        evaluate = [evaluation.EvaluateOnChief(model_fn, eval_spec.input_fn, eval_spec.steps)]
        validation_data = None
    else:
        train_data = distribution.shard_by_data(train_spec.input_fn())
        evaluate, validation_data = [], distribution.shard_by_data(eval_spec.input_fn())
    eval_dir = os.path.join(out_dir, f"eval_{eval_spec.name}" if eval_spec.name else "eval")
    backup_dir = os.path.join(job_dir, "backup")
    # A backup means a run to resume: keep its metrics rows. Otherwise start afresh.
    resuming = bool(tf.io.gfile.exists(backup_dir) and tf.io.gfile.listdir(backup_dir))
    tf.io.gfile.makedirs(eval_dir)
    exporters = RunExporters(eval_spec.exporters, out_dir)
    history = model.fit(
        train_data, epochs=evaluations, steps_per_epoch=steps_per_eval,
        validation_data=validation_data, validation_steps=eval_spec.steps, verbose=verbose,
        callbacks=evaluate + [
            keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False),
            Resume(evaluations * steps_per_eval),
            keras.callbacks.ModelCheckpoint(
                os.path.join(out_dir, "checkpoints", "ckpt-{epoch:04d}"), save_weights_only=True),
            keras.callbacks.TensorBoard(tensorboard_dir if chief and tensorboard_dir
                                        else os.path.join(out_dir, "logs")),
            keras.callbacks.CSVLogger(os.path.join(eval_dir, "metrics.csv"), append=resuming),
            exporters,
        ])
    if history.epoch:  # trained: the last evaluation, and what the exporters write
        metrics = eval_metrics({k: v[-1] for k, v in history.history.items()})
        paths = exporters.paths + [e.at_end(model, out_dir, metrics)
                                   for e in eval_spec.exporters]
    else:  # a finished run, rerun: its last evaluation and newest exports (written now only
        # if it was stopped before its final export)
        metrics = last_row_metrics(os.path.join(job_dir, os.path.basename(eval_dir),
                                                "metrics.csv"))
        paths = [e.newest(out_dir) or e.at_end(model, out_dir, metrics)
                 for e in eval_spec.exporters]
    metrics["global_step"] = int(model.optimizer.iterations.numpy())
    # A non-chief worker's copies are private, and deleted now: it reports none.
    metrics["exports"] = [p for p in paths if p] if chief else []
    if not chief:
        tf.io.gfile.rmtree(out_dir)
    return metrics
