"""Evaluation beside training (chapter 7), as the 2017 `train_and_evaluate` evaluated.

- `EvaluateOnChief` (a Keras callback): under ParameterServerStrategy the chief evaluates a
  local copy of the model after each interval, since `fit(validation_data=…)` there needs a
  step count, splits it unevenly over the workers' copies of the eval set, and cannot evaluate
  exactly through the model's lookup tables.
- `evaluate_checkpoints`: the sidecar evaluator, a task of its own (TF_CONFIG type
  "evaluator", outside the training cluster, as in 2017). It is `tf_keras.utils.
  SidecarEvaluator`, which TensorFlow's migration guide names as the replacement of the
  Estimator's evaluator: it evaluates each checkpoint the chief writes (`ckpt-0001`, …) until
  the last; `SidecarLog` keeps its results.
"""
import concurrent.futures
import logging
import os

import tensorflow as tf
import tf_keras as keras


class EvaluateOnChief(keras.callbacks.Callback):
    """After each training interval, evaluate `model_fn()`'s copy of the model, with the
    trained weights, on `input_fn()` for `steps` batches (None: to the end), and log its
    metrics as `fit(validation_data=…)` would: `val_loss`, `val_accuracy`, `val_auc`."""

    def __init__(self, model_fn, input_fn, steps=None):
        super().__init__()
        self.local, self.input_fn, self.steps = model_fn(), input_fn, steps

    def _evaluate(self):
        results = self.local.evaluate(self.input_fn(), steps=self.steps, verbose=0,
                                      return_dict=True)
        return {f"val_{k}": v for k, v in results.items()}

    def on_epoch_end(self, epoch, logs=None):
        """After an interval: the local copy takes the trained weights and evaluates; its metrics
        join `logs`."""
        self.local.set_weights(self.model.get_weights())
        # In another thread: strategy scopes are per thread, and outside fit's PSS scope the
        # local copy runs on the chief instead of being scheduled onto the workers.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            logs.update(pool.submit(self._evaluate).result())


class SidecarLog(keras.callbacks.Callback):
    """What the sidecar evaluator found, checkpoint by checkpoint: a line on stdout,
    `metrics.csv` (checkpoint, global_step, then each metric) and TensorBoard events in
    `out_dir`. The checkpoint is named from the restored step count (`steps_per_eval` steps
    per interval, `ckpt-{interval:04d}`, as the trainer names them; `last`: the run's last
    one). A resumed run's evaluator keeps the rows already there: `metrics` is the last."""

    def __init__(self, out_dir, steps_per_eval, last):
        super().__init__()
        self.out_dir, self.steps_per_eval, self.last = out_dir, steps_per_eval, last
        tf.io.gfile.makedirs(out_dir)
        self.writer = tf.summary.create_file_writer(out_dir)
        self.path = os.path.join(out_dir, "metrics.csv")
        self.rows, self.metrics = [], {}  # the CSV is rewritten whole: gs:// cannot append
        if tf.io.gfile.exists(self.path):
            with tf.io.gfile.GFile(self.path) as f:
                header, *self.rows = [line.strip() for line in f if line.strip()]
            if self.rows:
                names, values = header.split(",")[2:], self.rows[-1].split(",")[1:]
                self.metrics = dict(zip(names, map(float, values[1:])),
                                    global_step=int(values[0]))

    def name(self, step):
        """The trainer's name of the checkpoint written at `step`."""
        return f"ckpt-{round(step / self.steps_per_eval):04d}"

    def on_test_end(self, logs=None):
        """After an evaluation: its line, its CSV row, its TensorBoard scalars."""
        step = int(self.model.optimizer.iterations.numpy())
        checkpoint = self.name(step)
        results = {k: float(v) for k, v in (logs or {}).items()}
        self.metrics = dict(results, global_step=step)
        with self.writer.as_default(step=step):
            for k, v in results.items():
                tf.summary.scalar(k, v)
        self.writer.flush()
        names = sorted(results)
        self.rows.append(",".join([checkpoint, str(step), *(f"{results[k]:.6g}" for k in names)]))
        with tf.io.gfile.GFile(self.path, "w") as f:
            f.write("\n".join([",".join(["checkpoint", "global_step", *names]), *self.rows, ""]))
        after = "" if checkpoint >= self.last else "; waiting for the chief's next checkpoint"
        print(f"evaluated {checkpoint} (step {step}): "
              + ", ".join(f"{k} {v:.4f}" for k, v in results.items()) + after, flush=True)


class OptimizerStateNotes(logging.Filter):
    """Drops TensorFlow's notes that a checkpoint's optimizer values were not restored: the
    chief's checkpoints hold its optimizer state, which an evaluator never needs (its model's
    optimizer has slots, built before restoring, but no learning-rate variable). A note about
    any other unrestored value still shows."""

    NOTES = ("being deleted with unrestored values",
             "could not be found in the restored object: (root).optimizer")

    def filter(self, record):
        message = record.getMessage()
        return not any(note in message for note in self.NOTES)


class EvaluatorNotes(OptimizerStateNotes):
    """The evaluator task's filter: OptimizerStateNotes', and SidecarEvaluator's "No
    checkpoints appear to be found after 30 seconds", which it logs whenever 30 s pass without
    a *new* checkpoint, right after evaluating one (`SidecarLog` says what it waits for)."""

    NOTES = (*OptimizerStateNotes.NOTES, "No checkpoints appear to be found after")


def evaluate_checkpoints(model_fn, input_fn, steps, evaluations, steps_per_eval, job_dir):
    """The sidecar evaluator: `tf_keras.utils.SidecarEvaluator` on `<job_dir>/checkpoints`,
    evaluating `model_fn()` on `input_fn()` (`steps` batches, None: to the end) each time the
    chief writes a checkpoint, until checkpoint number `evaluations`, the last. Only
    checkpoints written after it started are read (a resumed run's earlier ones were evaluated
    by its earlier evaluator, or not at all); if the run's last one is there already, there is
    nothing to evaluate. Results go to `<job_dir>/eval_sidecar/`, after the rows of the run's
    earlier evaluations. Returns the last evaluation's metrics (`global_step` included) and
    `exports: []`. It waits for checkpoints as long as they take to come: a launcher stops it
    if the chief fails."""
    checkpoints = os.path.join(job_dir, "checkpoints")
    log = SidecarLog(os.path.join(job_dir, "eval_sidecar"), steps_per_eval,
                     last=f"ckpt-{evaluations:04d}")
    before = tf.train.latest_checkpoint(checkpoints)
    if before and os.path.basename(before) >= log.last:
        print(f"{log.last}, the run's last checkpoint, was written before this evaluator "
              "started: nothing to evaluate", flush=True)
        return dict(log.metrics, exports=[])
    model = model_fn()
    model.optimizer.build(model.trainable_variables)  # its slots restore with the weights
    # The notes come when a restore is garbage-collected, up to the process's exit: the
    # filter stays (an evaluator task ends after its last evaluation).
    logger = tf.get_logger()
    if not any(isinstance(f, EvaluatorNotes) for f in logger.filters):
        logger.addFilter(EvaluatorNotes())
    if before:  # SidecarEvaluator starts with the newest checkpoint there is: a new one
        print(f"waiting for the chief's checkpoints after {os.path.basename(before)} (written "
              "before this evaluator started)", flush=True)
        next(p for p in tf.train.checkpoints_iterator(checkpoints) if p != before)
    keras.utils.SidecarEvaluator(
        model, input_fn(), checkpoints, steps=steps, max_evaluations=evaluations,
        callbacks=[log]).start()
    log.writer.close()
    return dict(log.metrics, exports=[])
