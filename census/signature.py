"""The serving signature every export has (chapter 5), in one place: the export formats, the
inputs each takes, and the outputs all give. No TensorFlow here: the command line, the
readers of `census.instances` and the server's protocol read it without loading TensorFlow.
"""
from census import schema

FORMATS = ("JSON", "CSV", "EXAMPLE")  # --export-format's choices

# The input names. JSON: one input per column of `schema.INPUT_COLUMNS`, named as the column
# (float32 or string, shape (batch,)). CSV and EXAMPLE: one string input of shape (batch,),
# named here: a CSV row (`CSV_FIELDS`) or a serialized tf.train.Example per instance.
SINGLE_INPUT = {"CSV": "csv_row", "EXAMPLE": "examples"}
CSV_FIELDS = tuple(c for c in schema.CSV_COLUMNS if c != schema.LABEL_COLUMN)  # 14, no label

# The 2017 classifier head's outputs: class_ids int64 (batch, 1), classes string (batch, 1)
# (`schema.LABELS`), logistic and logits float32 (batch, 1), probabilities float32 (batch, 2).
OUTPUT_KEYS = ("class_ids", "classes", "logistic", "logits", "probabilities")

# Which signature answers. TF Serving's REST API defaults `signature_name` to
# "serving_default" ("If unspecified default serving signature is used", g3doc/api_rest.md)
# and answers a key the export lacks with a 400, {"error": "Serving signature name:
# \"serving_default\" not found in signature def"}
# (https://github.com/GoogleCloudPlatform/training-data-analyst/issues/380); a change to serve
# an export's only signature when it has no default was closed unmerged
# (https://github.com/tensorflow/serving/pull/1339). Cloud ML Engine's prediction library
# answered a request naming no signature from the export's only signature, whatever its key,
# else from "serving_default" (TensorFlowClient.get_signature in the gcloud SDK's
# lib/third_party/ml_sdk/cloud/ml/prediction/frameworks/tf_prediction_lib.py,
# https://github.com/google-cloud-sdk-unofficial/google-cloud-sdk): so the 2017 census
# export, whose Estimator wrote `predict` alone ("Export includes no default signature!"),
# was served without naming it.
DEFAULT_SIGNATURE = "serving_default"
FALLBACK_SIGNATURE = "predict"


class MissingSignature(LookupError):
    """A signature the export does not have; the message, one sentence, lists those it has."""

    def __init__(self, name, available):
        self.name, self.available = name, sorted(available)
        super().__init__(f"the export has no signature {name!r} (it has: "
                         f"{', '.join(self.available) or 'none'})")


def choose(requested, available):
    """The signature key that answers `requested` (a key; None or "" or DEFAULT_SIGNATURE:
    the default) among `available` (the export's keys): the one named; for the default,
    "serving_default", else "predict" (the 2017 export's only one, as Cloud ML Engine served
    it). Raises MissingSignature, listing `available`, when that key is not there."""
    available = set(available)
    name = requested or DEFAULT_SIGNATURE
    if name == DEFAULT_SIGNATURE and name not in available and FALLBACK_SIGNATURE in available:
        return FALLBACK_SIGNATURE
    if name not in available:
        raise MissingSignature(name, available)
    return name


def output_order(keys):
    """An export's output keys in the order the course shows them: `OUTPUT_KEYS` first (those
    there), then any others (the 2017 export's `all_class_ids`, `all_classes`) sorted."""
    keys = list(keys)
    return [k for k in OUTPUT_KEYS if k in keys] + sorted(k for k in keys if k not in OUTPUT_KEYS)
