"""TF_CONFIG, the environment variable that tells each process of a cluster its role.

Chapter 7. A trainer reads the same flags alone or on a cluster; TF_CONFIG alone decides
(the 2017 promise). Cloud ML Engine wrote it in 2017, Vertex AI writes it today (a chief,
workers, parameter servers, an evaluator, and in a tuning job the trial); `read_tf_config`
takes every form and gives it in TensorFlow's terms.
"""
import argparse
import json
import os

from census.flags import whole

TASK_TYPES = ("chief", "master", "worker", "ps", "evaluator")


class TFConfigError(ValueError):
    """A TF_CONFIG the trainer cannot run with; the message is one sentence."""


def read_json_variable(name, text=None):
    """The JSON value of environment variable `name` (or of `text`, when given), None when it
    is unset or blank. Raises TFConfigError when it is not valid JSON, or is JSON's null."""
    text = os.environ.get(name, "") if text is None else text
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise TFConfigError(f"{name} is not valid JSON ({e.msg} at column {e.colno})") from None
    if value is None:
        raise TFConfigError(f"{name} must be a JSON object, not null")
    return value


def read_tf_config(text=None):
    """TF_CONFIG (the environment variable when `text` is None), as Cloud ML Engine (2017) or
    Vertex AI writes it, checked and in TensorFlow's terms.

    Both services give a `cluster` (task type → list of "host:port"), this process's `task`
    (type and index; in a tuning job also `trial`), and `environment: "cloud"`; 2017's chief
    was called `master`, a name TensorFlow now refuses ("Disallowed task type"), so it
    becomes `chief`. An evaluator is outside the training cluster. Returns {"cluster", "type",
    "index", "trial"} ({} when there is no TF_CONFIG: the trainer runs alone). Raises
    TFConfigError naming what is wrong."""
    config = read_json_variable("TF_CONFIG", text)
    if config is None:
        return {}
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
    try:  # TensorFlow reads it with int() (TFConfigClusterResolver.task_id): 0 or "0"
        index = whole(0)(index)
    except argparse.ArgumentTypeError:
        raise TFConfigError(f"TF_CONFIG's task index must be a whole number >= 0 (0 or "
                            f"\"0\"), not {index!r}") from None
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


def is_chief():
    """Whether this task writes the job's results: the chief, or worker 0 of a cluster
    without one (MultiWorkerMirrored), or the trainer running alone."""
    task_type, task_index, cluster = cluster_role()
    if strategy_kind(cluster) == "local" and task_type != "evaluator":
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_index == 0 and "chief" not in cluster
