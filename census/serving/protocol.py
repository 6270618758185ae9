"""Requests and replies (chapter 9): TensorFlow Serving's REST API (tensorflow/serving
`g3doc/api_rest.md`) and a Vertex AI endpoint's predict format, independent of the web
framework around them.

    GET  /v1/models/census[/versions/N]             version status
    GET  /v1/models/census[/versions/N]/metadata    signature_def, as `saved_model_cli` shows it
    POST /v1/models/census[/versions/N]:predict     {"instances": [...]}  -> {"predictions": [...]}
                                                    {"inputs": {...}}     -> {"outputs": {...}}
    POST /v1/models/census[/versions/N]:classify    {"examples": [...]}   -> {"results": [...]}
    POST /v1/endpoints/E/deployedModels/M:predict   {"instances", "parameters"}
                                                    -> {"predictions", "deployedModelId"}
         (:rawPredict too: Vertex AI passes its body on to the same route)
    /v1/models/census/labels/L…                     TF Serving's 400 for an unknown label

Every error is `{"error": "..."}`, as TF Serving answers, with 400, 404, 405, 413, 429 or 503 (500
only for a model that fails on a checked request). `DIFFERENCES` lists where this server
departs from TF Serving on purpose.
"""
import json

from census import instances, schema, signature

DEFAULT_PORT = 8501


DEFAULT_MODEL_NAME = "census"


# Vertex AI's limit for an online prediction request: 1.5 MB.
MAX_REQUEST_BYTES = 1_500_000


PARSE_IN_THREAD_BYTES = 262_144  # bodies above this are parsed off the event loop


# Where `census serve` differs from TensorFlow Serving's REST API (tensorflow/serving
# g3doc/api_rest.md), on purpose; `census serve --help` and chapter 9 list them.
DIFFERENCES = (
    "values no census answer can have (NaN, Infinity, negative money, age or hours, numbers "
    "beyond float32) get a 400 naming the instance and field; TF Serving passes them on",
    "a request body over 1.5 MB (Vertex AI's limit) gets a 413",
    ":classify takes the 13 inputs as features for any of the course's signatures (TF "
    "Serving needs a classify signature); a CSV export refuses it",
    ":regress gets a 400: the model is a classifier",
    "version labels (/labels/NAME) and the gRPC API are not served",
    "the version policy is TF Serving's `latest { num_versions: N }` (--keep-versions N, 1 by "
    "default as there); its `all` and `specific` policies are not offered",
    "a wrong method gets a 405 naming the right one, and a trailing slash is the same route "
    "(TF Serving answers both with a 400, Malformed request)",
    "a version that fails to load (one copied in pieces) is tried again when its files change, "
    "else within 30 s, for as long as it is on disk (TF Serving tries 5 more times, a minute "
    "apart); a SavedModel directory given as the base path is served as version 1",
    "Vertex AI's routes are served too: {\"instances\", \"parameters\"} in, "
    "{\"predictions\", \"deployedModelId\"} out",
    "an export without serving_default (the 2017 census export has only predict) answers "
    "requests that name no signature from predict, as Cloud ML Engine did, where TF Serving "
    "answers a 400 (Serving signature name: \"serving_default\" not found in signature def); "
    "outputs beyond the course's five (its all_class_ids and all_classes) pass through",
)


class ServingError(Exception):
    """A request that gets an HTTP error: `{"error": message}` with `status`."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_body(body):
    """Request bytes → a JSON object, or a 400 naming the problem."""
    if not body:
        raise ServingError(400, "JSON Parse error: the request body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ServingError(400, f"JSON Parse error: the body is not UTF-8 ({e.reason} at "
                           f"byte {e.start})") from None
    try:  # NaN, Infinity and -Infinity are read, as TF Serving reads them (then refused)
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ServingError(400, f"JSON Parse error: {e.msg} at line {e.lineno} column "
                           f"{e.colno}") from None
    except (ValueError, RecursionError) as e:
        raise ServingError(400, f"JSON Parse error: {e}") from None
    if not isinstance(value, dict):
        raise ServingError(400, "the request body must be a JSON object, like "
                           '{"instances": [...]}')
    return value


def check_keys(body, allowed):
    """A 400 naming the first key of `body` that is not among `allowed`."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ServingError(400, f"unknown key {unknown[0]!r} in the request (expected: "
                           f"{', '.join(allowed)})")


def rows_of(items, what="instances"):
    """The shape of the request: a non-empty list. Each item is checked with the batch, in
    the worker thread, as the signature's format wants it (`job_columns`)."""
    if not isinstance(items, list):
        raise ServingError(400, f"{what} must be a JSON list, one item per instance, got "
                           f"{type(items).__name__}")
    if not items:
        raise ServingError(400, f"{what} is empty: send at least one instance")
    return items


def inputs_to_instances(inputs, fmt):
    """TF Serving's columnar `inputs` → rows, so that they are checked alike: for the JSON
    format a map of each input name to its list of values; for the one-input formats (CSV,
    EXAMPLE) that map, or the input's list of values itself."""
    single = signature.SINGLE_INPUT.get(fmt)
    if single and isinstance(inputs, list):
        return inputs
    if not isinstance(inputs, dict):
        raise ServingError(400, "inputs must be a JSON object mapping each input name to a "
                           "list of values (columnar format)")
    if single:
        if set(inputs) != {single}:
            raise ServingError(400, f"inputs: this signature ({fmt} format) has one input, "
                               f"{single!r}")
        return rows_of(inputs[single], "inputs")
    if not inputs:
        raise ServingError(400, "inputs is empty: send the 13 input columns")
    lengths = {}
    for name, values in inputs.items():
        if not isinstance(values, list):
            raise ServingError(400, f"inputs[{name!r}] must be a list of values, one per row")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(lengths.items()))
        raise ServingError(400, f"inputs must all have the same number of rows ({detail})")
    n = next(iter(lengths.values()))
    return [{name: values[i] for name, values in inputs.items()} for i in range(n)]


def classify_examples(context, examples, fmt):
    """TF Serving's classify request: each example's features, with the context's shared ones
    (a feature may not be in both); a one-value list is that value. For an EXAMPLE export the
    features become serialized tf.train.Example protos, as TF Serving makes them."""
    if fmt == "CSV":
        raise ServingError(400, "this signature (CSV format) takes CSV rows: use :predict "
                           "with one row per instance")
    if not isinstance(context, dict):
        raise ServingError(400, "context must be a JSON object of features")
    items = []
    for n, example in enumerate(rows_of(examples, "examples"), 1):
        if not isinstance(example, dict):
            raise ServingError(400, f"examples: instance {n}: expected a JSON object of "
                               "features")
        shared = sorted(set(context) & set(example))
        if shared:
            raise ServingError(400, f"examples: instance {n}: feature {shared[0]!r} is also "
                               "in the context (a feature goes in one of them)")
        items.append({k: v[0] if isinstance(v, list) and len(v) == 1 else v
                      for k, v in {**context, **example}.items()})
    if fmt == "EXAMPLE":
        try:
            items = [instances.to_example(instances.check_fields(n, i))
                     for n, i in enumerate(items, 1)]
        except instances.PredictError as e:
            raise ServingError(400, f"examples: {e}") from None
    return items


def render_classify(outputs):
    """TF Serving's classify result: per example, [[label, score], ...] for every class. The
    labels are the export's own `all_classes` when it has them (a 2017 Estimator export: its
    class ids as strings, "0" and "1"), else the course's `schema.LABELS`."""
    labels = ([[v.decode() if isinstance(v, bytes) else v for v in row]
               for row in outputs["all_classes"].tolist()] if "all_classes" in outputs
              else [schema.LABELS] * len(outputs["probabilities"]))
    return [[[label, score] for label, score in zip(names, probs)]
            for names, probs in zip(labels, outputs["probabilities"].tolist())]
