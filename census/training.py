"""Train, evaluate and export in one call: the 2017 `train_and_evaluate`, on tf-keras.

`TrainSpec` says what to train on and for how long; `EvalSpec` says what to evaluate on, how
often, and which exporters to run. `train_and_evaluate` builds the model under the
distribution strategy that `TF_CONFIG` asks for, trains with checkpoints and TensorBoard logs
in the job dir, evaluates every `EvalSpec.every_steps` steps, exports, and returns the final
evaluation metrics. Rerun after an interruption, it resumes from the last evaluation.
"""
import concurrent.futures
import dataclasses
import json
import math
import os
import time
from typing import Callable, Optional, Sequence

import tensorflow as tf
import tf_keras as keras

from census import export


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
    input_fn: Callable[[], tf.data.Dataset]  # an endless dataset of (features, label) batches
    max_steps: int

    def __post_init__(self):
        _check_count("TrainSpec", "max_steps", self.max_steps)


@dataclasses.dataclass
class EvalSpec:
    input_fn: Callable[[], tf.data.Dataset]
    steps: Optional[int] = None  # batches per evaluation; None: until the dataset ends
    every_steps: int = 500  # evaluate (and back up, and run exporters) this often
    exporters: Sequence["Exporter"] = ()
    name: Optional[str] = None  # evaluation results go to <job_dir>/eval[_name]/

    def __post_init__(self):
        _check_count("EvalSpec", "steps", self.steps, optional=True)
        _check_count("EvalSpec", "every_steps", self.every_steps)


class Exporter:
    """Writes SavedModel versions to `<job_dir>/export/<name>/<timestamp>/`."""

    def __init__(self, name="census", export_format="JSON"):
        self.name, self.export_format = name, export_format

    def after_eval(self, model, job_dir, metrics):
        """Called after every evaluation; returns the new export's path or None."""

    def at_end(self, model, job_dir, metrics):
        """Called once when training has finished; returns the new export's path or None."""

    def export(self, model, job_dir):
        return export.export_model(model, os.path.join(job_dir, "export", self.name),
                                   self.export_format)


class FinalExporter(Exporter):
    """Exports once, when training ends."""

    def at_end(self, model, job_dir, metrics):
        return self.export(model, job_dir)


class LatestExporter(Exporter):
    """Exports after every evaluation and keeps the newest `exports_to_keep` versions."""

    def __init__(self, name="census", export_format="JSON", exports_to_keep=5):
        super().__init__(name, export_format)
        self.exports_to_keep = exports_to_keep

    def after_eval(self, model, job_dir, metrics):
        path = self.export(model, job_dir)
        for old in export.list_versions(os.path.dirname(path))[:-self.exports_to_keep]:
            tf.io.gfile.rmtree(old)
        return path


class BestExporter(Exporter):
    """Exports after an evaluation that beats every earlier one on `metric`."""

    def __init__(self, name="census", export_format="JSON", metric="auc", higher_is_better=True):
        super().__init__(name, export_format)
        self.metric, self.sign = metric, 1 if higher_is_better else -1
        self.best = -math.inf

    def after_eval(self, model, job_dir, metrics):
        score = self.sign * metrics[self.metric]
        if score > self.best:
            self.best = score
            return self.export(model, job_dir)


TASK_TYPES = ("chief", "master", "worker", "ps", "evaluator")


class TFConfigError(ValueError):
    """A TF_CONFIG the trainer cannot run with; the message is one sentence."""


def read_tf_config(text=None):
    """TF_CONFIG (the environment variable when `text` is None), as Cloud ML Engine (2017) or
    Vertex AI writes it, checked and in TensorFlow's terms.

    Both services give a `cluster` (task type → list of "host:port"), this process's `task`
    (type and index; in a tuning job also `trial`), and `environment: "cloud"`; 2017's chief
    was called `master`, a name TensorFlow now refuses ("Disallowed task type"), so it
    becomes `chief`. An evaluator is outside the training cluster. Returns {"cluster", "type",
    "index", "trial"} ({} when there is no TF_CONFIG: the trainer runs alone). Raises
    TFConfigError naming what is wrong."""
    text = os.environ.get("TF_CONFIG", "") if text is None else text
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise TFConfigError(f"TF_CONFIG is not valid JSON ({e.msg} at column {e.colno})"
                            ) from None
    if not isinstance(config, dict):
        raise TFConfigError("TF_CONFIG must be a JSON object with `cluster` and `task`")
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TFConfigError("TF_CONFIG's `cluster` and `task` must be JSON objects")
    renamed = {}
    for kind, addresses in cluster.items():
        if kind not in TASK_TYPES:
            raise TFConfigError(f"TF_CONFIG's cluster has a task type {kind!r}; the trainer "
                                f"knows {', '.join(TASK_TYPES)}")
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and ":" in a for a in addresses)):
            raise TFConfigError(f"TF_CONFIG's cluster[{kind!r}] must be a list of "
                                "'host:port' strings")
        renamed.setdefault("chief" if kind == "master" else kind, []).extend(addresses)
    if len(renamed.get("chief", [])) > 1:
        raise TFConfigError("TF_CONFIG's cluster has more than one chief (master)")
    kind, index = task.get("type", "chief" if renamed else ""), task.get("index", 0)
    if renamed and kind not in TASK_TYPES:
        raise TFConfigError(f"TF_CONFIG's task type {kind!r} is none of {', '.join(TASK_TYPES)}")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise TFConfigError(f"TF_CONFIG's task index must be a whole number >= 0, not {index!r}")
    kind = "chief" if kind == "master" else kind
    if renamed and kind != "evaluator" and index >= len(renamed.get(kind, [])):
        raise TFConfigError(f"TF_CONFIG's task {kind} {index} is not in its cluster "
                            f"({len(renamed.get(kind, []))} {kind} task(s))")
    renamed.pop("evaluator", None)  # outside the training cluster; it reads checkpoints
    return {"cluster": renamed, "type": kind, "index": index, "trial": task.get("trial")}


def tf_config_for_tensorflow(config):
    """The TF_CONFIG text TensorFlow's strategies read, from `read_tf_config`'s result."""
    return json.dumps({"cluster": config["cluster"],
                       "task": {"type": config["type"], "index": config["index"]}})


def cluster_role():
    """(task type, task index, cluster dict) from TF_CONFIG; ("", 0, {}) when run alone."""
    config = read_tf_config()
    return config.get("type", ""), config.get("index", 0), config.get("cluster", {})


def strategy_kind(cluster):
    """Which strategy a TF_CONFIG cluster calls for: "local" (no cluster, or a cluster of one
    task, like 2017's BASIC tier), "parameter_server" (when it has a `ps` job) or
    "multi_worker"."""
    tasks = sum(len(addresses) for kind, addresses in cluster.items() if kind != "evaluator")
    if tasks <= 1:
        return "local"
    return "parameter_server" if "ps" in cluster else "multi_worker"


def strategy_from_tf_config():
    """The strategy TF_CONFIG asks for. On a parameter-server cluster, worker and ps tasks
    only serve the chief: they block here and never return."""
    config = read_tf_config()
    kind = strategy_kind(config.get("cluster", {}))
    if kind == "local":
        return tf.distribute.get_strategy()
    os.environ["TF_CONFIG"] = tf_config_for_tensorflow(config)  # what TF's resolvers read
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if config["type"] in ("worker", "ps"):
        server = tf.distribute.Server(resolver.cluster_spec(), job_name=config["type"],
                                      task_index=config["index"], protocol="grpc", start=True)
        server.join()
    return tf.distribute.experimental.ParameterServerStrategy(resolver)


def is_chief():
    """Whether this task writes the job's results: the chief, or worker 0 of a cluster
    without one (MultiWorkerMirrored), or the trainer running alone."""
    task_type, task_index, cluster = cluster_role()
    if strategy_kind(cluster) == "local" and task_type != "evaluator":
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_index == 0 and "chief" not in cluster


class _RunExporters(keras.callbacks.Callback):
    """Runs each exporter after every evaluation (the end of each Keras 'epoch')."""

    def __init__(self, exporters, job_dir):
        super().__init__()
        self.exporters, self.job_dir, self.paths = exporters, job_dir, []

    def on_epoch_end(self, epoch, logs=None):
        metrics = _eval_metrics(logs)
        for exporter in self.exporters:
            self.paths.append(exporter.after_eval(self.model, self.job_dir, metrics))


class _EvaluateOnChief(keras.callbacks.Callback):
    """Under ParameterServerStrategy, `fit(validation_data=…)` needs a step count and splits
    it unevenly over the workers' own copies of the eval set (and exact evaluation fails on
    the model's lookup tables). So the chief evaluates a local copy of the model instead,
    logging the same `val_` metrics as `validation_data` does."""

    def __init__(self, model_fn, eval_spec):
        super().__init__()
        self.local, self.eval_spec = model_fn(), eval_spec

    def _evaluate(self):
        results = self.local.evaluate(self.eval_spec.input_fn(), steps=self.eval_spec.steps,
                                      verbose=0, return_dict=True)
        return {f"val_{k}": v for k, v in results.items()}

    def on_epoch_end(self, epoch, logs=None):
        self.local.set_weights(self.model.get_weights())
        # In another thread: strategy scopes are per thread, and outside fit's PSS scope the
        # local copy runs on the chief instead of being scheduled onto the workers.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            logs.update(pool.submit(self._evaluate).result())


def _shard_by_data(dataset):
    """MultiWorkerMirrored splits input by file unless told otherwise, and one CSV file can't
    be split over two workers: split by batch instead (a no-op when training alone)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _eval_metrics(logs):
    return {k[len("val_"):]: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}


def _evaluation_schedule(train_spec, eval_spec):
    """(number of evaluations, steps between them): whole intervals covering max_steps."""
    evaluations = max(1, math.ceil(train_spec.max_steps / eval_spec.every_steps))
    return evaluations, math.ceil(train_spec.max_steps / evaluations)


def evaluate_checkpoints(model_fn, train_spec, eval_spec, job_dir, poll_seconds=1.0,
                         idle_timeout=600.0):
    """The sidecar evaluator (TF_CONFIG task type "evaluator", outside the cluster spec, as
    the 2017 evaluator task): evaluate the chief's newest checkpoint in `<job_dir>/checkpoints`
    each time a new one appears, until its last one; results go to `<job_dir>/eval_sidecar/`
    (metrics.csv and TensorBoard events). Gives up after `idle_timeout` seconds without a
    new checkpoint. Returns the last evaluation's metrics (`global_step` included)."""
    evaluations, steps_per_eval = _evaluation_schedule(train_spec, eval_spec)
    checkpoint_dir = os.path.join(job_dir, "checkpoints")
    out_dir = os.path.join(job_dir, "eval_sidecar")
    tf.io.gfile.makedirs(out_dir)
    model, writer = model_fn(), tf.summary.create_file_writer(out_dir)
    metrics, seen, epoch, rows = {}, None, 0, []  # no appending on gs://: rewrite the CSV
    last_new = time.monotonic()
    while epoch < evaluations:
        try:
            latest = tf.train.latest_checkpoint(checkpoint_dir)
        except (tf.errors.OpError, ValueError):  # the state file is being rewritten
            latest = None
        if latest in (None, seen):
            if time.monotonic() - last_new > idle_timeout:
                raise TimeoutError(f"no new checkpoint in {checkpoint_dir} for "
                                   f"{idle_timeout:.0f} s; the last was {seen}")
            time.sleep(poll_seconds)
            continue
        seen, last_new = latest, time.monotonic()
        epoch = int(latest.rsplit("-", 1)[-1])  # ckpt-0003: after evaluation interval 3
        model.load_weights(latest).expect_partial()
        results = model.evaluate(eval_spec.input_fn(), steps=eval_spec.steps, verbose=0,
                                 return_dict=True)
        metrics = {k: float(v) for k, v in results.items()}
        metrics["global_step"] = epoch * steps_per_eval
        with writer.as_default(step=metrics["global_step"]):
            for k, v in results.items():
                tf.summary.scalar(k, v)
        names = sorted(k for k in metrics if k != "global_step")
        rows.append(",".join([os.path.basename(latest), str(metrics["global_step"]),
                              *(f"{metrics[k]:.6g}" for k in names)]))
        with tf.io.gfile.GFile(os.path.join(out_dir, "metrics.csv"), "w") as f:
            f.write("\n".join([",".join(["checkpoint", "global_step", *names]), *rows, ""]))
        print(f"evaluated {os.path.basename(latest)} (step {metrics['global_step']}): "
              + ", ".join(f"{k} {v:.4f}" for k, v in results.items()), flush=True)
    writer.close()
    return dict(metrics, exports=[])


def train_and_evaluate(model_fn, train_spec, eval_spec, job_dir, verbose=2):
    """Build `model_fn()` under the cluster's strategy, train `train_spec.max_steps` steps
    (rounded up to whole evaluation intervals), evaluate every `eval_spec.every_steps`,
    run the exporters, and return the last evaluation's metrics (plus `global_step` and
    `exports`: the paths written). An evaluator task evaluates the chief's checkpoints
    instead (`evaluate_checkpoints`)."""
    if cluster_role()[0] == "evaluator":
        return evaluate_checkpoints(model_fn, train_spec, eval_spec, job_dir)
    strategy = strategy_from_tf_config()
    chief = is_chief()
    # Non-chief workers of a MultiWorkerMirrored cluster must take part in every collective
    # step, exports included, but write their copies somewhere private.
    out_dir = job_dir if chief else os.path.join(job_dir, "workers", str(cluster_role()[1]))
    pss = isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)
    with strategy.scope():
        model = model_fn()

    evaluations, steps_per_eval = _evaluation_schedule(train_spec, eval_spec)
    if pss:
        train_data = keras.utils.experimental.DatasetCreator(lambda _: train_spec.input_fn())
        evaluate, validation_data = [_EvaluateOnChief(model_fn, eval_spec)], None
    else:
        train_data = _shard_by_data(train_spec.input_fn())
        evaluate, validation_data = [], _shard_by_data(eval_spec.input_fn())
    eval_dir = os.path.join(out_dir, f"eval_{eval_spec.name}" if eval_spec.name else "eval")
    backup_dir = os.path.join(job_dir, "backup")
    # A backup means an interrupted run to resume: keep its metrics rows. Otherwise start afresh.
    resuming = bool(tf.io.gfile.exists(backup_dir) and tf.io.gfile.listdir(backup_dir))
    tf.io.gfile.makedirs(eval_dir)
    exporters = _RunExporters(eval_spec.exporters, out_dir)
    history = model.fit(
        train_data, epochs=evaluations, steps_per_epoch=steps_per_eval,
        validation_data=validation_data, validation_steps=eval_spec.steps, verbose=verbose,
        callbacks=evaluate + [
            keras.callbacks.BackupAndRestore(backup_dir),
            keras.callbacks.ModelCheckpoint(os.path.join(out_dir, "checkpoints", "ckpt-{epoch:04d}"),
                                            save_weights_only=True),
            keras.callbacks.TensorBoard(os.path.join(out_dir, "logs")),
            keras.callbacks.CSVLogger(os.path.join(eval_dir, "metrics.csv"), append=resuming),
            exporters,
        ])
    metrics = _eval_metrics({k: v[-1] for k, v in history.history.items()})
    paths = exporters.paths + [e.at_end(model, out_dir, metrics) for e in eval_spec.exporters]
    metrics["global_step"] = int(model.optimizer.iterations.numpy())
    metrics["exports"] = [p for p in paths if p]
    if not chief:
        tf.io.gfile.rmtree(out_dir)
    return metrics
