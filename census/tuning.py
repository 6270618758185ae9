"""Hyperparameter tuning: the 2017 study, run locally with Optuna and on Vertex AI.

2017: `gcloud ml-engine jobs submit training … --config hptuning_config.yaml`, where the YAML's
`trainingInput.hyperparameters` named the metric, the goal, the trial counts and each
parameter's type, range and scale. Cloud ML Engine ran the trainer once per trial with
`--first-layer-size=… --num-layers=… --scale-factor=…` and read the metric the trainer reported.
Today Vertex AI calls the same thing a HyperparameterTuningJob with a `studySpec`; locally,
`census tune` plays the service's part with Optuna:

    census tune --config hptuning_config.yaml --parallel-trials 2 -- --job-dir jobs/tune …

Every trial is a subprocess of the unchanged trainer (`python -m census.task`) with the trainer
flags, its own job dir `JOB/<trial id>`, Vertex-style `--param=value` flags and its own
`$CLOUD_ML_HP_METRIC_FILE`, which the trainer writes through `cloudml-hypertune`, as on
Vertex. The study lives in `JOB/study.journal` (Optuna's journal storage): rerun the same
command and it resumes. A trial that fails or outlives `--trial-timeout` is recorded as
FAILED and the study goes on; Ctrl-C stops the running trials.

Scales. Linear and log scales map to Optuna's `suggest_int`/`suggest_float` (`log=True`).
Vertex's UNIT_REVERSE_LOG_SCALE spreads values near the *top* of the range, where log spreads
those near the bottom. So the tuner samples the reflected value r = min + max - x with
`log=True` (r in [min, max], dense near min) and uses x = min + max - r (dense near max).
Optuna sees r (the parameter is stored as `scale-factor~reflected`); the results show x.
"""
import argparse
import contextlib
import dataclasses
import glob
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from census import flags

# Legacy (Cloud ML Engine) ↔ Vertex names.
_LEGACY_TYPES = {"DOUBLE": "doubleValueSpec", "INTEGER": "integerValueSpec",
                 "CATEGORICAL": "categoricalValueSpec", "DISCRETE": "discreteValueSpec"}
_VERTEX_TYPES = {v: k for k, v in _LEGACY_TYPES.items()}
SCALES = ("UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE")
# Vertex's search algorithms (the local tuner samples with Optuna's TPE whichever is named)
ALGORITHMS = ("ALGORITHM_UNSPECIFIED", "GRID_SEARCH", "RANDOM_SEARCH")
REFLECTED = "~reflected"  # suffix of the Optuna name of a reverse-log parameter
METRIC_FLAG = "--hypertune-metric"  # the trainer flag that names the metric to report
STUDY_NAME = "census"
JOURNAL = "study.journal"
RESULTS = "trials.csv"


class ConfigError(ValueError):
    pass


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
        return self.spec["metrics"][0]["metricId"]

    @property
    def goal(self):
        return self.spec["metrics"][0]["goal"]

    @property
    def parameters(self):
        return self.spec["parameters"]


# --- configs: legacy trainingInput.hyperparameters ↔ Vertex studySpec -------------------------

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


NOT_TUNABLE = ("job-dir", "train-files", "eval-files", "data-dir", "hypertune-metric",
               "verbosity")


def trainer_error(flags):
    """What the trainer's own parser says of `flags` (its last line), or None if it takes
    them: a value the trainer refuses is refused before any trial starts."""
    from census import task
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            task.parser().parse_args(["--job-dir", "unused", *flags])
    except SystemExit:
        return said.getvalue().strip().splitlines()[-1].removeprefix("census train: error: ")
    return None


def check_against_trainer(study, trainer_args=()):
    """The study asks for what the course's trainer reports and takes, checked before any
    trial starts: a metric it reports (`census.task.REPORTED_METRICS`), and parameters that
    are its flags, with values of the flag's type and range (min, max, a value between, every
    listed value); `trainer_args`, the flags every trial gets, must be ones it takes too.
    Raises ConfigError, in one sentence."""
    from census import task
    error = trainer_error([a for a in trainer_args])
    if error:
        raise ConfigError(f"the trainer flags after `--`: {error}")
    if study.metric not in task.REPORTED_METRICS:
        raise ConfigError(f"metric {study.metric!r} is not one the trainer reports (it reports "
                          f"{', '.join(task.REPORTED_METRICS)})")
    for p in study.parameters:
        name = p["parameterId"]
        if name in NOT_TUNABLE or trainer_error([f"--{name}=1"]) == \
                f"unrecognized arguments: --{name}=1":
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
            error = trainer_error([f"--{name}={flag_value(_whole_if_whole(value, kind))}"])
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


# --- sampling: study parameters → Optuna ------------------------------------------------------

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
    if isinstance(value, float):
        return repr(value)
    return str(value)


def trial_flags(params):
    """Vertex-style `--name=value` flags, in the study's parameter order."""
    return [f"--{name}={flag_value(value)}" for name, value in params.items()]


# --- the local tuner --------------------------------------------------------------------------

class TrialFailed(Exception):
    pass


def split_job_dir(trainer_args):
    """(job dir, the trainer flags without --job-dir)."""
    args, rest, job_dir = list(trainer_args), [], None
    i = 0
    while i < len(args):
        if args[i] == "--job-dir" and i + 1 < len(args):
            job_dir, i = args[i + 1], i + 2
            continue
        if args[i].startswith("--job-dir="):
            job_dir = args[i].split("=", 1)[1]
        else:
            rest.append(args[i])
        i += 1
    if not job_dir:
        raise ConfigError("the trainer flags need --job-dir (the study's folder)")
    return job_dir, rest


def read_metric(path, tag):
    """The last value reported for `tag` in a cloudml-hypertune metric file (JSON lines)."""
    value = None
    with open(path) as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                if tag in record:
                    value = float(record[tag])
    if value is None:
        raise TrialFailed(f"no {tag!r} in {path}")
    return value


def last_line(path):
    """The last line a trainer wrote (its own error, or a traceback's last line)."""
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _kill(proc):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class LocalTuner:
    """Runs `study` with Optuna; every trial `command + trainer_args + --param=value`."""

    def __init__(self, study, trainer_args, command=None, trial_timeout=None, seed=None,
                 out=None):
        self.study = study
        self.job_dir, self.trainer_args = split_job_dir(trainer_args)
        self.command = list(command or [sys.executable, "-m", "census.task"])
        self.trial_timeout, self.seed = trial_timeout, seed
        self.out = out or sys.stdout
        self.running, self.stopping, self._lock = {}, False, threading.Lock()

    # Optuna's study in JOB/study.journal
    def optuna_study(self):
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        os.makedirs(self.job_dir, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(os.path.join(self.job_dir, JOURNAL)))
        sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True,
                                             seed=self.seed, n_startup_trials=min(
                                                 10, max(2, self.study.max_trials // 2)))
        return optuna.create_study(storage=storage, sampler=sampler, study_name=STUDY_NAME,
                                   direction=self.study.goal.lower(), load_if_exists=True)

    def _abandon_stale(self, study):
        """Trials left RUNNING by an earlier run that was killed: FAILED, 'interrupted'."""
        from optuna.trial import TrialState
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study._storage.set_trial_user_attr(t._trial_id, "reason", "interrupted")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)

    @staticmethod
    def counted(trial):
        """A trial that counts towards maxTrials: finished, and not cut short by Ctrl-C."""
        return trial.state.is_finished() and trial.user_attrs.get("reason") != "interrupted"

    def objective(self, trial):
        params = {p["parameterId"]: suggest(trial, p) for p in self.study.parameters}
        trial_id = str(trial.number + 1)  # Vertex numbers trials from 1
        trial_dir = os.path.join(self.job_dir, trial_id)
        shutil.rmtree(trial_dir, ignore_errors=True)
        os.makedirs(trial_dir)
        metric_file = os.path.join(trial_dir, "hypertune", "output.metrics")
        argv = [*self.command, *self.trainer_args, "--job-dir", trial_dir,
                f"{METRIC_FLAG}={self.study.metric}", *trial_flags(params)]
        for key, value in (("trial_id", trial_id), ("params", params),
                           ("job_dir", trial_dir), ("command", shlex.join(argv))):
            trial.set_user_attr(key, value)
        env = dict(os.environ, CLOUD_ML_HP_METRIC_FILE=metric_file, CLOUD_ML_TRIAL_ID=trial_id)
        if self.stopping:
            trial.set_user_attr("reason", "interrupted")
            raise TrialFailed("interrupted")
        start = time.monotonic()
        with open(os.path.join(trial_dir, "trainer.log"), "w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)  # its own group: kill it whole
            with self._lock:
                self.running[trial.number] = proc
            try:
                returncode = proc.wait(timeout=self.trial_timeout)
                reason = None if returncode == 0 else \
                    f"exit status {returncode}: {last_line(log.name)}"
            except subprocess.TimeoutExpired:
                _kill(proc)
                proc.wait()
                reason = f"timeout after {self.trial_timeout:g} s"
            except KeyboardInterrupt:  # one trial at a time: Ctrl-C lands here
                _kill(proc)
                trial.set_user_attr("reason", "interrupted")
                raise
            finally:
                with self._lock:
                    self.running.pop(trial.number, None)
        trial.set_user_attr("seconds", round(time.monotonic() - start, 1))
        if self.stopping:
            reason = "interrupted"
        if reason is None and not os.path.isfile(metric_file):
            reason = "no metric reported"
        if reason:
            trial.set_user_attr("reason", reason)
            raise TrialFailed(reason)
        return read_metric(metric_file, self.study.metric)

    def stop(self):
        """Stop the study: kill every running trial's process group."""
        self.stopping = True
        with self._lock:
            for proc in self.running.values():
                _kill(proc)

    def progress(self, study, trial):
        done = sum(self.counted(t) for t in study.get_trials(deepcopy=False))
        params = trial.user_attrs.get("params", {})
        shown = " ".join(f"{k}={_short(v)}" for k, v in params.items())
        result = (f"{self.study.metric}={trial.value:.4f}" if trial.value is not None
                  else f"({trial.user_attrs.get('reason', 'failed')})")
        print(f"[tune] trial {trial.user_attrs.get('trial_id')} "
              f"{trial.state.name.replace('COMPLETE', 'SUCCEEDED').replace('FAIL', 'FAILED')}"
              f" {result} {shown} in {trial.user_attrs.get('seconds', 0):.0f} s "
              f"({done}/{self.study.max_trials})", file=self.out, flush=True)

    def run(self, max_trials=None, parallel_trials=None):
        """Run the study to `max_trials` counted trials (resuming one that exists); returns
        the results table (a pandas DataFrame), also saved as JOB/trials.csv."""
        max_trials = max_trials or self.study.max_trials
        self.study.max_trials = max_trials
        parallel = parallel_trials or self.study.parallel_trials
        with warnings_off():  # optuna's ExperimentalWarnings (multivariate TPE, journal)
            study = self.optuna_study()
        self._abandon_stale(study)
        done = sum(self.counted(t) for t in study.get_trials(deepcopy=False))
        remaining = max(0, max_trials - done)
        print(f"[tune] study {os.path.join(self.job_dir, JOURNAL)}: {done} trials done, "
              f"{remaining} to run, {parallel} at a time", file=self.out, flush=True)
        previous = None
        if threading.current_thread() is threading.main_thread():
            def on_sigint(signum, frame):
                self.stop()
                raise KeyboardInterrupt
            previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            if remaining:
                with warnings_off():
                    study.optimize(self.objective, n_trials=remaining,
                                   n_jobs=min(parallel, remaining), catch=(TrialFailed,),
                                   callbacks=[self.progress])
        except KeyboardInterrupt:
            self.stop()
            print("[tune] interrupted: running trials stopped; rerun the same command to "
                  "resume", file=self.out, flush=True)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        table = results(study, self.study)
        table.to_csv(os.path.join(self.job_dir, RESULTS), index=False)
        keep_best(study, self.job_dir)
        return table



@contextlib.contextmanager
def warnings_off():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def results(optuna_study, study):
    """One row per trial: trial id, each parameter, the metric, state, seconds, reason."""
    import pandas as pd
    rows = []
    for t in optuna_study.get_trials(deepcopy=False):
        row = {"trial": int(t.user_attrs.get("trial_id", t.number + 1))}
        row.update(t.user_attrs.get("params", {}))
        row[study.metric] = t.value
        row["state"] = {"COMPLETE": "SUCCEEDED", "FAIL": "FAILED"}.get(t.state.name,
                                                                        t.state.name)
        row["seconds"] = t.user_attrs.get("seconds")
        row["reason"] = t.user_attrs.get("reason", "")
        rows.append(row)
    columns = ["trial", *(p["parameterId"] for p in study.parameters), study.metric, "state",
               "seconds", "reason"]
    return pd.DataFrame(rows, columns=columns)


def best_trial(optuna_study):
    try:
        return optuna_study.best_trial
    except ValueError:  # no trial succeeded
        return None


def keep_best(optuna_study, job_dir):
    """The best trial's export, copied to JOB/export/census/<version>, and JOB/best.json."""
    best = best_trial(optuna_study)
    if best is None:
        return None
    trial_dir = best.user_attrs["job_dir"]
    versions = sorted(glob.glob(os.path.join(trial_dir, "export", "census", "*")))
    info = {"trial": best.user_attrs["trial_id"], "value": best.value,
            "params": best.user_attrs["params"], "job_dir": trial_dir, "export": None}
    if versions:
        target = os.path.join(job_dir, "export", "census")
        shutil.rmtree(target, ignore_errors=True)  # one version: the best trial's
        info["export"] = shutil.copytree(versions[-1], os.path.join(
            target, os.path.basename(versions[-1])))
    Path(job_dir, "best.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def tune(config, trainer_args, max_trials=None, parallel_trials=None, command=None,
         trial_timeout=None, seed=None, out=None):
    """Run the study in `config` (a path or a Study) locally; returns the results table."""
    study = config if isinstance(config, Study) else read_config(config)
    study = dataclasses.replace(study, spec=json.loads(json.dumps(study.spec)))
    if command is None or command[-1] == "census.task":  # the course's trainer: we know it
        check_against_trainer(study, split_job_dir(trainer_args)[1])
    tuner = LocalTuner(study, trainer_args, command, trial_timeout, seed, out)
    return tuner.run(max_trials, parallel_trials)


# --- Vertex AI: the HyperparameterTuningJob ---------------------------------------------------

def study_spec(study):
    """The StudySpec as an `aiplatform_v1.StudySpec`."""
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import json_format
    pb = v1.StudySpec.pb()()
    json_format.ParseDict(study.spec, pb)
    return v1.StudySpec.wrap(pb)


def hp_job(study, trial_job, display_name="census-hptuning"):
    """A `google.cloud.aiplatform_v1.HyperparameterTuningJob`: the study, and `trial_job`
    (a CustomJob from `census.cloud.job_spec`, whose trainer flags should name the metric
    with `--hypertune-metric`; see `trial_args`) as the spec of every trial. Raises
    ConfigError if the study asks the trainer for what it does not report or take."""
    from google.cloud import aiplatform_v1 as v1
    check_against_trainer(study)
    return v1.HyperparameterTuningJob(
        display_name=display_name, study_spec=study_spec(study),
        max_trial_count=study.max_trials, parallel_trial_count=study.parallel_trials,
        max_failed_trial_count=study.max_failed_trials, trial_job_spec=trial_job.job_spec)


def trial_args(study, args):
    """Trainer flags for Vertex trials: `args` plus the flag that names the reported metric
    (Vertex appends `--param=value` for each parameter itself)."""
    return [*args, f"{METRIC_FLAG}={study.metric}"]


def job_dict(job):
    """The job as `gcloud ai hp-tuning-jobs create --config` reads it (no display name: a
    flag), 64-bit integers as numbers."""
    from census import cloud
    value = cloud.to_dict(job)
    value.pop("displayName", None)
    return value


def write_yaml(job, path):
    Path(path).write_text(yaml.safe_dump(job_dict(job), sort_keys=False))
    return str(path)


def gcloud_command(job, region, config_path):
    return shlex.join(["gcloud", "ai", "hp-tuning-jobs", "create", f"--region={region}",
                       f"--display-name={job.display_name}", f"--config={config_path}",
                       f"--max-trial-count={job.max_trial_count}",
                       f"--parallel-trial-count={job.parallel_trial_count}"])


_SDK_SCALES = {"UNIT_LINEAR_SCALE": "linear", "UNIT_LOG_SCALE": "log",
               "UNIT_REVERSE_LOG_SCALE": "reverse_log", "SCALE_TYPE_UNSPECIFIED": "unspecified"}


def sdk_parameter_spec(study):
    """The study's parameters as the SDK's `hyperparameter_tuning` specs."""
    from google.cloud.aiplatform import hyperparameter_tuning as hpt
    specs = {}
    for p in study.parameters:
        scale = _SDK_SCALES[p.get("scaleType", "SCALE_TYPE_UNSPECIFIED")]
        if "doubleValueSpec" in p:
            v = p["doubleValueSpec"]
            specs[p["parameterId"]] = hpt.DoubleParameterSpec(v["minValue"], v["maxValue"], scale)
        elif "integerValueSpec" in p:
            v = p["integerValueSpec"]
            specs[p["parameterId"]] = hpt.IntegerParameterSpec(v["minValue"], v["maxValue"],
                                                               scale)
        elif "categoricalValueSpec" in p:
            specs[p["parameterId"]] = hpt.CategoricalParameterSpec(
                p["categoricalValueSpec"]["values"])
        else:
            specs[p["parameterId"]] = hpt.DiscreteParameterSpec(
                p["discreteValueSpec"]["values"], scale)
    return specs


def describe(job, region="us-central1", config_path="hptuning_job.yaml"):
    return (f"# {config_path}\n{yaml.safe_dump(job_dict(job), sort_keys=False)}\n"
            f"{gcloud_command(job, region, config_path)}")


def submit(job, study, project=None, location="us-central1", staging_bucket=None,
           credentials=None, api_endpoint=None, api_transport=None, wait=False,
           config_path="hptuning_job.yaml", out=None):
    """Create the HyperparameterTuningJob through the google-cloud-aiplatform SDK; returns
    the SDK's job (`wait`: until it ends). Without a project: print what would be submitted
    and return None."""
    from census import cloud
    out = out or sys.stdout
    if not project:
        return cloud.dry_run(describe(job, location, config_path), out)
    from google.cloud import aiplatform
    custom = cloud.sdk_custom_job(f"{job.display_name}-trial", job.trial_job_spec, project,
                                  location, staging_bucket, credentials,
                                  api_endpoint=api_endpoint, api_transport=api_transport)
    hp = aiplatform.HyperparameterTuningJob(
        display_name=job.display_name, custom_job=custom,
        metric_spec={study.metric: study.goal.lower()},
        parameter_spec=sdk_parameter_spec(study), max_trial_count=job.max_trial_count,
        parallel_trial_count=job.parallel_trial_count,
        max_failed_trial_count=job.max_failed_trial_count, project=project, location=location,
        credentials=credentials)
    hp.run(sync=wait)
    if not wait:
        hp.wait_for_resource_creation()
    job_id = hp.resource_name.rsplit("/", 1)[-1]
    print(f"Submitted {hp.resource_name}\n"
          f"  describe: gcloud ai hp-tuning-jobs describe {job_id} --region={location}",
          file=out)
    if wait:
        print(f"{hp.resource_name}: {hp.state.name}", file=out)
    return hp


# --- census tune ------------------------------------------------------------------------------

def parser():
    p = argparse.ArgumentParser(
        prog="census tune", allow_abbrev=False,
        description="Run a hyperparameter study locally (Optuna), each trial the trainer in a "
                    "subprocess. Rerun the same command to resume.",
        usage="census tune --config FILE [--max-trials N] [--parallel-trials K] "
              "[--trial-timeout S] -- --job-dir JOB [trainer flags]")
    p.add_argument("--config", required=True, help="hptuning_config.yaml (trainingInput."
                   "hyperparameters) or a Vertex studySpec YAML")
    p.add_argument("--max-trials", type=flags.whole(1), help="default: the config's maxTrials")
    p.add_argument("--parallel-trials", type=flags.whole(1), help="default: the config's maxParallelTrials")
    p.add_argument("--trial-timeout", type=flags.number(above=0), help="seconds; a slower trial is FAILED")
    p.add_argument("--module", default="census.task", help="the trainer module")
    p.add_argument("--seed", type=flags.whole(0), help="the sampler's seed")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--" in argv:
        i = argv.index("--")
        own, trainer = argv[:i], argv[i + 1:]
    else:
        own, trainer = argv, []
    args = parser().parse_args(own)
    try:
        study = read_config(args.config)
        table = tune(study, trainer, args.max_trials, args.parallel_trials,
                     [sys.executable, "-m", args.module], args.trial_timeout, args.seed)
    except (ConfigError, OSError) as e:
        sys.exit(f"census tune: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    import pandas as pd
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["reason"] if not table["reason"].any() else []).to_string(
            index=False))
    job_dir = split_job_dir(trainer)[0]
    best = Path(job_dir, "best.json")
    if best.is_file():
        info = json.loads(best.read_text())
        print(f"best: trial {info['trial']} {study.metric}={info['value']:.4f} "
              f"{info['params']}; export {info['export']}")
    print(f"results: {os.path.join(job_dir, RESULTS)}")
    if not (table["state"] == "SUCCEEDED").any():
        sys.exit("census tune: no trial succeeded (each trial's reason is above; its full log is "
                 f"{os.path.join(job_dir, '<trial>', 'trainer.log')})")
    return table


if __name__ == "__main__":
    main()
