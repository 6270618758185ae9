"""A hyperparameter study, in 2017's words and in Vertex AI's (chapter 8).

2017: `gcloud ml-engine jobs submit training … --config hptuning_config.yaml`, where the YAML's
`trainingInput.hyperparameters` named the metric, the goal, the trial counts and each
parameter's type, range and scale. Vertex AI calls the same thing a `studySpec`. A `Study`
holds it in Vertex's form; `read_config` takes either; `check_against_trainer` makes sure the
course's trainer reports the metric and takes every parameter, before any trial runs.

Scales. Linear and log scales map to Optuna's `suggest_int`/`suggest_float` (`log=True`).
Vertex's UNIT_REVERSE_LOG_SCALE spreads values near the *top* of the range, where log spreads
those near the bottom. So `suggest` samples the reflected value r = min + max - x with
`log=True` (r in [min, max], dense near min) and uses x = min + max - r (dense near max).
Optuna sees r (the parameter is stored as `scale-factor~reflected`); the results show x.
"""
import dataclasses
from pathlib import Path

import yaml

from census.flags import ConfigError  # a study config that cannot run, in one sentence

# Legacy (Cloud ML Engine) ↔ Vertex names.
_LEGACY_TYPES = {"DOUBLE": "doubleValueSpec", "INTEGER": "integerValueSpec",
                 "CATEGORICAL": "categoricalValueSpec", "DISCRETE": "discreteValueSpec"}


_VERTEX_TYPES = {v: k for k, v in _LEGACY_TYPES.items()}


SCALES = ("UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE")


# Vertex's search algorithms (the local tuner samples with Optuna's TPE whichever is named)
ALGORITHMS = ("ALGORITHM_UNSPECIFIED", "GRID_SEARCH", "RANDOM_SEARCH")


REFLECTED = "~reflected"  # suffix of the Optuna name of a reverse-log parameter


METRIC_FLAG = "--hypertune-metric"  # the trainer flag that names the metric to report




@dataclasses.dataclass
class Study:
    """A study in Vertex's terms: `spec` is a StudySpec as a camelCase dict (metrics,
    parameters, algorithm…); the trial counts sit beside it, as in a HyperparameterTuningJob."""
    spec: dict
    max_trials: int = 1
    parallel_trials: int = 1
    max_failed_trials: int = 0

    @property
    def metric(self):
        """The metric's name (hyperparameterMetricTag)."""
        return self.spec["metrics"][0]["metricId"]

    @property
    def goal(self):
        """MAXIMIZE or MINIMIZE."""
        return self.spec["metrics"][0]["goal"]

    @property
    def parameters(self):
        """The parameters, each a Vertex ParameterSpec as a dict."""
        return self.spec["parameters"]


def _number(value, kind):
    return int(value) if kind == "integerValueSpec" else float(value)


def from_legacy(hyperparameters):
    """A Study from Cloud ML Engine's `trainingInput.hyperparameters`."""
    h = hyperparameters
    if "hyperparameterMetricTag" not in h or "goal" not in h:
        raise ConfigError("hyperparameters need goal and hyperparameterMetricTag")
    params = []
    for p in h.get("params", []):
        kind = _LEGACY_TYPES.get(p.get("type"))
        if kind is None:
            raise ConfigError(f"{p.get('parameterName')}: unknown type {p.get('type')!r}")
        spec = {"parameterId": p["parameterName"]}
        if kind in ("doubleValueSpec", "integerValueSpec"):
            spec[kind] = {"minValue": _number(p["minValue"], kind),
                          "maxValue": _number(p["maxValue"], kind)}
        elif kind == "categoricalValueSpec":
            spec[kind] = {"values": [str(v) for v in p["categoricalValues"]]}
        else:
            spec[kind] = {"values": [float(v) for v in p["discreteValues"]]}
        if p.get("scaleType"):
            spec["scaleType"] = p["scaleType"]
        params.append(spec)
    spec = {"metrics": [{"metricId": h["hyperparameterMetricTag"], "goal": h["goal"]}],
            "parameters": params}
    if h.get("algorithm"):
        spec["algorithm"] = h["algorithm"]
    study = Study(spec, int(h.get("maxTrials", 1)), int(h.get("maxParallelTrials", 1)),
                  int(h.get("maxFailedTrials", 0)))
    validate(study)
    return study


def to_legacy(study):
    """The Study as `{"trainingInput": {"hyperparameters": …}}` (Cloud ML Engine's form)."""
    params = []
    for p in study.parameters:
        [kind] = [k for k in _VERTEX_TYPES if k in p]
        legacy = {"parameterName": p["parameterId"], "type": _VERTEX_TYPES[kind]}
        if kind in ("doubleValueSpec", "integerValueSpec"):
            legacy["minValue"] = _number(p[kind]["minValue"], kind)
            legacy["maxValue"] = _number(p[kind]["maxValue"], kind)
        elif kind == "categoricalValueSpec":
            legacy["categoricalValues"] = list(p[kind]["values"])
        else:
            legacy["discreteValues"] = list(p[kind]["values"])
        if p.get("scaleType"):
            legacy["scaleType"] = p["scaleType"]
        params.append(legacy)
    h = {"goal": study.goal, "hyperparameterMetricTag": study.metric,
         "maxTrials": study.max_trials, "maxParallelTrials": study.parallel_trials}
    if study.max_failed_trials:
        h["maxFailedTrials"] = study.max_failed_trials
    if study.spec.get("algorithm"):
        h["algorithm"] = study.spec["algorithm"]
    h["params"] = params
    return {"trainingInput": {"hyperparameters": h}}


def from_vertex(job):
    """A Study from a HyperparameterTuningJob dict (`studySpec`, `maxTrialCount`, …; what
    `gcloud ai hp-tuning-jobs create --config` reads) or a bare StudySpec dict."""
    spec = job.get("studySpec", job)
    params = []
    for p in spec.get("parameters", []):
        p = dict(p)
        for kind in ("doubleValueSpec", "integerValueSpec"):  # int64s may come as strings
            if kind in p:
                p[kind] = {k: _number(v, kind) for k, v in p[kind].items()}
        params.append(p)
    study = Study(dict(spec, parameters=params), int(job.get("maxTrialCount", 1)),
                  int(job.get("parallelTrialCount", 1)), int(job.get("maxFailedTrialCount", 0)))
    validate(study)
    return study


def to_vertex(study):
    """The Study as the camelCase dict of a HyperparameterTuningJob (no trial job spec)."""
    job = {"studySpec": study.spec, "maxTrialCount": study.max_trials,
           "parallelTrialCount": study.parallel_trials}
    if study.max_failed_trials:
        job["maxFailedTrialCount"] = study.max_failed_trials
    return job


def validate(study):
    """Check a Study's structure (one metric, its goal, each parameter's one value spec, scales,
    ranges, trial counts, algorithm); ConfigError if wrong."""
    if len(study.spec.get("metrics", [])) != 1:
        raise ConfigError("exactly one metric, please")
    if study.goal not in ("MAXIMIZE", "MINIMIZE"):
        raise ConfigError(f"goal must be MAXIMIZE or MINIMIZE, not {study.goal!r}")
    if not study.parameters:
        raise ConfigError("no parameters to tune")
    for p in study.parameters:
        kinds = [k for k in _VERTEX_TYPES if k in p]
        if len(kinds) != 1:
            raise ConfigError(f"{p.get('parameterId')}: give exactly one value spec")
        scale = p.get("scaleType", "UNIT_LINEAR_SCALE")
        if scale not in SCALES + ("SCALE_TYPE_UNSPECIFIED",):
            raise ConfigError(f"{p['parameterId']}: unknown scaleType {scale!r}")
        if kinds[0] in ("doubleValueSpec", "integerValueSpec"):
            lo, hi = p[kinds[0]]["minValue"], p[kinds[0]]["maxValue"]
            if lo > hi:
                raise ConfigError(f"{p['parameterId']}: minValue > maxValue")
            if scale in ("UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE") and lo <= 0:
                raise ConfigError(f"{p['parameterId']}: a log scale needs minValue > 0")
    if study.max_trials < 1 or study.parallel_trials < 1:
        raise ConfigError("maxTrials and maxParallelTrials must be at least 1")
    if study.max_failed_trials < 0:
        raise ConfigError("maxFailedTrials must be at least 0")
    algorithm = study.spec.get("algorithm", "ALGORITHM_UNSPECIFIED")
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm {algorithm!r} is none of {', '.join(ALGORITHMS)}")


def field(parameter_id):
    """The TrainConfig field a parameter sets (`first-layer-size` → first_layer_size), or None
    if a study may not tune it (`census.config.TUNABLE`)."""
    from census.config import TUNABLE
    name = parameter_id.replace("-", "_")
    return name if name in TUNABLE and "_" not in parameter_id else None


def trainer_error(params):
    """What the trainer's configuration says of the values `params` ({parameterId: value}),
    one sentence, or None if it takes them: a value the trainer refuses is refused before
    any trial starts."""
    from census.config import ConfigError, TrainConfig
    unknown = [name for name in params if not field(name)]
    if unknown:
        return f"{unknown[0]!r} is not a trainer flag that can be tuned"
    try:
        TrainConfig(job_dir="unused", **{field(n): v for n, v in params.items()})
    except ConfigError as e:  # in the study's words: the flag, not the Python field
        return f"--{e.field.replace('_', '-')} {e.reason}" if e.reason else str(e)
    return None


def check_against_trainer(study):
    """The study asks for what the course's trainer reports and takes, checked before any
    trial starts: a metric it reports (`census.config.REPORTED_METRICS`), and parameters that
    are its tunable flags, with values of the flag's type and range (min, max, a value
    between, every listed value). Raises ConfigError, in one sentence."""
    from census.config import REPORTED_METRICS
    if study.metric not in REPORTED_METRICS:
        raise ConfigError(f"metric {study.metric!r} is not one the trainer reports (it reports "
                          f"{', '.join(REPORTED_METRICS)})")
    for p in study.parameters:
        name = p["parameterId"]
        if not field(name):
            raise ConfigError(f"parameter {name!r} is not a trainer flag that can be tuned "
                              "(see `census train --help`)")
        if "doubleValueSpec" in p or "integerValueSpec" in p:
            kind = "doubleValueSpec" if "doubleValueSpec" in p else "integerValueSpec"
            lo, hi = p[kind]["minValue"], p[kind]["maxValue"]
            values = [lo, hi] + ([(lo + hi) / 2] if kind == "doubleValueSpec" else [])
            values = [float(v) if kind == "doubleValueSpec" else int(v) for v in values]
        else:
            [kind] = [k for k in ("categoricalValueSpec", "discreteValueSpec") if k in p]
            values = list(p[kind]["values"])
        for value in values:
            error = trainer_error({name: _whole_if_whole(value, kind)})
            if error:
                raise ConfigError(f"parameter {name!r}: the trainer refuses {value!r} ({error})")


def _whole_if_whole(value, kind):
    """A DISCRETE value the tuner passes as an integer when it is one (see `suggest`)."""
    if kind == "discreteValueSpec" and float(value).is_integer():
        return int(value)
    return value


def read_config(path):
    """A Study from a YAML (or JSON) file in either form: the 2017 `trainingInput:
    hyperparameters:` (or a bare `hyperparameters:`), or Vertex's `studySpec:`."""
    doc = yaml.safe_load(Path(path).read_text()) or {}
    if "trainingInput" in doc:
        doc = doc["trainingInput"]
    if "hyperparameters" in doc:
        return from_legacy(doc["hyperparameters"])
    if "studySpec" in doc or "metrics" in doc:
        return from_vertex(doc)
    raise ConfigError(f"{path}: neither trainingInput.hyperparameters nor studySpec")


def suggest(trial, parameter):
    """One parameter's value for an Optuna trial, type and scale kept (see the module doc)."""
    name, scale = parameter["parameterId"], parameter.get("scaleType", "UNIT_LINEAR_SCALE")
    for kind, fn in (("doubleValueSpec", trial.suggest_float),
                     ("integerValueSpec", trial.suggest_int)):
        if kind in parameter:
            lo, hi = parameter[kind]["minValue"], parameter[kind]["maxValue"]
            if scale == "UNIT_REVERSE_LOG_SCALE":
                reflected = fn(name + REFLECTED, lo, hi, log=True)
                value = lo + hi - reflected
                if isinstance(value, float):  # 0.1 + 1.0 - 1.0 is 0.10000000000000009
                    value = float(f"{value:.12g}")
                return min(max(value, lo), hi)
            return fn(name, lo, hi, log=scale == "UNIT_LOG_SCALE")
    if "categoricalValueSpec" in parameter:
        return trial.suggest_categorical(name, list(parameter["categoricalValueSpec"]["values"]))
    values = [float(v) for v in parameter["discreteValueSpec"]["values"]]  # whole ones as int:
    return trial.suggest_categorical(  # an integer flag refuses --train-batch-size=64.0
        name, [int(v) if v.is_integer() else v for v in values])


def flag_value(value):
    """A parameter value as the trainer flag takes it (floats in full, as repr writes them)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def trial_flags(params):
    """Vertex-style `--name=value` flags, in the study's parameter order."""
    return [f"--{name}={flag_value(value)}" for name, value in params.items()]
