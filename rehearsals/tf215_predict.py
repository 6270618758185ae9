"""Run in another TensorFlow's venv (TF 2.15, `museum_venv`), with none of the course's code:
what that TensorFlow makes of an export. Prints one JSON line on stdout (the last line):

    python tf215_predict.py load DIR [SIGNATURE] < inputs.json
        tf.saved_model.load(DIR) and its signature (default `serving_default`) called on the
        inputs: {input name: [values]}, strings as text or TF Serving's {"b64": …},
        converted to the signature's dtype, shape (n,)
    python tf215_predict.py npy FOLDER               the .npy files `saved_model_cli run
        --outdir FOLDER` wrote, one per output key

Either prints {"tensorflow": version, "outputs": {key: {"dtype", "shape", "values"}}}
(strings decoded as UTF-8); a failure to load or run raises, its traceback on stderr.
TensorFlow is imported only when run, so that the test importing `described` loads none.
"""
import base64
import json
import sys
from pathlib import Path

import numpy as np


def described(array):
    """{dtype (numpy's name; 'string' for TF strings), shape, values (nested lists)}."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        return {"dtype": "string", "shape": list(array.shape),
                "values": np.vectorize(lambda b: b.decode())(array).tolist()}
    return {"dtype": array.dtype.name, "shape": list(array.shape), "values": array.tolist()}


def value(item):
    """An input value: TF Serving's {"b64": …} as bytes, anything else as it is."""
    return base64.b64decode(item["b64"]) if isinstance(item, dict) else item


def load(export_dir, inputs, signature="serving_default"):
    """{output key: array} of the export's `signature` on `inputs` ({name: list})."""
    import tensorflow as tf
    serve = tf.saved_model.load(export_dir).signatures[signature]
    specs = serve.structured_input_signature[1]
    feeds = {name: tf.constant([value(v) for v in values], dtype=specs[name].dtype)
             for name, values in inputs.items()}
    return {key: tensor.numpy() for key, tensor in serve(**feeds).items()}


def npy(folder):
    """{output key: array} of the .npy files in `folder`."""
    return {path.stem: np.load(path, allow_pickle=True) for path in Path(folder).glob("*.npy")}


if __name__ == "__main__":
    import tensorflow as tf
    mode, where, *signature = sys.argv[1:]
    outputs = load(where, json.load(sys.stdin), *signature) if mode == "load" else npy(where)
    print(json.dumps({"tensorflow": tf.__version__,
                      "outputs": {k: described(v) for k, v in sorted(outputs.items())}}))
