"""census: the 2017 `train_and_evaluate` census example, on TensorFlow 2.21 + tf-keras.

Modules, one job each: schema (the data's facts), data (download and clean), inputs
(tf.data pipeline), model (wide & deep), training (specs, exporters, train_and_evaluate),
export (SavedModel with the 2017 signature), predict (local prediction), task (trainer CLI),
cli (the `census` command).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # fewer C++ log lines (2.21 still prints a few)
