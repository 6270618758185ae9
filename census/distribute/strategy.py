"""The tf.distribute strategy a TF_CONFIG calls for (chapter 7): none when the trainer runs
alone, MultiWorkerMirroredStrategy for workers only, ParameterServerStrategy with `ps` tasks.
"""
import os
import signal
import threading

import tensorflow as tf

from census.distribute.tf_config import read_tf_config, strategy_kind, tf_config_for_tensorflow


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
        role = "runs the steps the chief sends" if config["type"] == "worker" else \
            "holds the variables"
        print(f"{config['type']} {config['index']} ({server.target}) {role}, until stopped",
              flush=True)
        # Stopped by SIGTERM, at once: no Python handler could run while join() blocks.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.join()
    # Connecting to the cluster logs through Python's root logger, which then gets a handler
    # of its own; TensorFlow's logger has one already: without this, its messages print twice.
    tf.get_logger().propagate = False
    return tf.distribute.ParameterServerStrategy(resolver)


def shard_by_data(dataset):
    """MultiWorkerMirrored splits input by file unless told otherwise, and one CSV file can't
    be split over two workers: split by batch instead (a no-op when training alone)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
