"""`saved_model_cli show --signature_def NAME` listings, read and compared (the appendix): the
2017 post's, quoted once here, the 2017 code's export's and today's. Standard library only: it
runs in either environment.
"""
import re

# The listing the 2017 post printed for its export (`--signature_def predict`), as it printed
# it, abbreviations included: the post on tf.estimator.train_and_evaluate with the Census data
# by Amy Unruh (Google Cloud blog, 2017; the author's copy, dated 2018-01-26, at POST_URL).
POST_URL = "http://amygdala.github.io/ml/tensorflow/cloud_ml_engine/2018/01/26/tf.html"
POST = """\
The given SavedModel SignatureDef contains the following input(s):
inputs['age'] tensor_info:
    dtype: DT_FLOAT
    shape: (-1)
    name: Placeholder_8:0
inputs['capital_gain'] tensor_info:
    dtype: DT_FLOAT
    shape: (-1)
    name: Placeholder_10:0
inputs['capital_loss'] tensor_info:
    dtype: DT_FLOAT
    shape: (-1)
    name: Placeholder_11:0
inputs['education'] tensor_info:
    dtype: DT_STRING
    shape: (-1)
    name: Placeholder_2:0
<... more input fields here ...>
The given SavedModel SignatureDef contains the following output(s):
outputs['class_ids'] tensor_info:
    dtype: DT_INT64
    shape: (-1, 1)
    name: head/predictions/classes:0
outputs['classes'] tensor_info:
    dtype: DT_STRING
    shape: (-1, 1)
    name: head/predictions/str_classes:0
outputs['logistic'] tensor_info:
    dtype: DT_FLOAT
    shape: (-1, 1)
    name: head/predictions/logistic:0
outputs['logits'] tensor_info:
    dtype: DT_FLOAT
    shape: (-1, 1)
    name: head/predictions/logits:0
outputs['probabilities'] tensor_info:
    dtype: DT_FLOAT
    shape: (-1, 2)
    name: head/predictions/probabilities:0
Method name is: tensorflow/serving/predict"""

TENSOR = re.compile(r"^\s*(inputs|outputs)\['([^']+)'\] tensor_info:\s*\n\s*dtype: (\S+)\s*\n"
                    r"\s*shape: (.+?)\s*\n\s*name: (\S+)", re.MULTILINE)
METHOD = re.compile(r"^\s*Method name is: (\S+)", re.MULTILINE)


def parse(text):
    """A listing → {"inputs": {key: (dtype, shape, tensor name)}, "outputs": {…}, "method":
    method name or None}, keys in the listing's order; lines it does not know (the post's
    "<... more input fields here ...>") are passed over. Raises ValueError for a text that
    lists no tensor."""
    found = {"inputs": {}, "outputs": {}}
    for section, key, dtype, shape, name in TENSOR.findall(text):
        found[section][key] = (dtype, shape, name)
    if not (found["inputs"] or found["outputs"]):
        raise ValueError("no inputs['…'] or outputs['…'] tensor_info in this text: is it "
                         "`saved_model_cli show … --signature_def NAME`?")
    method = METHOD.search(text)
    return {**found, "method": method.group(1) if method else None}


def side_by_side(listings):
    """{title: parsed listing} → the rows of a table, one per input or output key of any
    of them (the first listing's order first): (section, key, then per listing "DTYPE shape
    name", or "—" where it has no such key)."""
    rows = []
    for section in ("inputs", "outputs"):
        keys = list(dict.fromkeys(k for listing in listings.values() for k in listing[section]))
        for key in keys:
            rows.append((section, key, *(" ".join(listing[section][key])
                                         if key in listing[section] else "—"
                                         for listing in listings.values())))
    return rows


def table(listings):
    """`side_by_side` as aligned text, with a header of the titles."""
    rows = [("", "key", *listings), *side_by_side(listings)]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def differences(old, new):
    """What changed from listing `old` to `new` (both parsed), in sentences: keys only in
    one, and for the keys in both, how many agree on dtype, shape and tensor name."""
    lines = []
    for section in ("inputs", "outputs"):
        a, b = old[section], new[section]
        both = [k for k in a if k in b]
        same = [k for k in both if a[k][:2] == b[k][:2]]
        named = [k for k in same if a[k][2] == b[k][2]]
        line = (f"{section}: {len(both)} keys in both, {len(same)} with the same dtype and "
                f"shape, {len(named)} of them with the same tensor name")
        if only := [k for k in a if k not in b]:
            line += f"; only in the first: {', '.join(only)}"
        if only := [k for k in b if k not in a]:
            line += f"; only in the second: {', '.join(only)}"
        lines.append(line)
    method = "the same" if old["method"] == new["method"] else f"{old['method']} → {new['method']}"
    lines.append(f"method name: {method}")
    return lines
