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
