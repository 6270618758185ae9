"""`census tune`: a study run on this machine, Optuna in the part of the tuning service.

    census tune --config hptuning_config.yaml --parallel-trials 2 -- --job-dir jobs/tune …

Chapter 8. Every trial is a subprocess of the unchanged trainer (`python -m census.task`) with
the trainer flags, `--job-dir JOB` and the trial's id in `$CLOUD_ML_TRIAL_ID` (the trainer
then writes to `JOB/<trial id>`, the rule it follows on Vertex AI), Vertex-style
`--param=value` flags and its own `$CLOUD_ML_HP_METRIC_FILE`, which the trainer writes through
`cloudml-hypertune`, as on Vertex. The study lives in `JOB/study.db` (Optuna's RDB storage,
in SQLite): rerun the same command and it resumes. A trial that fails or outlives
`--trial-timeout` is recorded as FAILED, with the trainer's last line as its reason, and the
study goes on; Ctrl-C stops the running trials.

Several `census tune` processes on one study cooperate as Optuna's distributed workers do
(Optuna's tutorial, "Easy Parallelization"): each asks the storage for its next trial, and
together they run the study's maxTrials. A trial is failed by its own process, or, if that
process died, by Optuna's heartbeat: a RUNNING trial whose process has not recorded a
heartbeat for `GRACE_PERIOD` seconds is FAILED by the next process that starts a trial
(`RDBStorage(heartbeat_interval=…, grace_period=…)`, `optuna.storages.fail_stale_trials`).
"""
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

from census import processes, quiet
from census.config import as_config, changes, split_job_dir
from census.distribute import vertex_env
from census.tuning.study import (
    METRIC_FLAG,
    ConfigError,
    Study,
    check_against_trainer,
    read_config,
    suggest,
    trial_flags,
)

STUDY_NAME = "census"


STUDY_DB = "study.db"
HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # a RUNNING trial silent this long lost its process: FAILED


RESULTS = "trials.csv"
BEST = "best.json"


def startup_trials(max_trials):
    """How many of a study's `max_trials` trials are random draws before TPE proposes any:
    half, at least 2 and at most 10 (Optuna's own default is 10, more than a 2017-sized study
    has). Returns an int."""
    return min(10, max(2, max_trials // 2))


class TrialFailed(Exception):
    """A trial ended without a metric; the message is its reason."""


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


def job_dir_and_flags(trainer):
    """(the study's folder; the other trainer flags) of `trainer`, a TrainConfig or a trainer
    command line (list of str). Raises ConfigError."""
    job_dir, rest = split_job_dir(trainer)
    if not job_dir:
        raise ConfigError("the trainer flags need --job-dir (the study's folder)")
    return job_dir, rest


def reason(trial):
    """Why a trial failed: what the tuner recorded, or "interrupted" for one whose process
    was killed (failed by Optuna's heartbeat: it never reported how long it ran)."""
    from optuna.trial import TrialState
    if trial.user_attrs.get("reason"):
        return trial.user_attrs["reason"]
    return "interrupted" if trial.state == TrialState.FAIL and "seconds" not in trial.user_attrs \
        else ""


class LocalTuner:
    """Runs `study` with Optuna; every trial `command` with the flags of `trainer` (a
    TrainConfig, or another trainer's command line), its own --job-dir, the metric's flag and
    Vertex-style `--param=value` flags."""

    def __init__(self, study, trainer, command=None, trial_timeout=None, seed=None,
                 out=None):
        self.study = study
        self.job_dir, self.trainer_args = job_dir_and_flags(trainer)
        self.command = list(command or [sys.executable, "-m", "census.task"])
        self.trial_timeout, self.seed = trial_timeout, seed
        self.out = out or sys.stdout
        self.running, self.stopping, self._lock = {}, False, threading.Lock()
        self.trial_env = {}  # the trials' TMPDIR, during `run`

    def optuna_study(self):
        """The Optuna study in JOB/study.db (`storage`), created or resumed: TPE, multivariate,
        with a constant liar for parallel trials."""
        import optuna
        os.makedirs(self.job_dir, exist_ok=True)
        sampler = optuna.samplers.TPESampler(
            multivariate=True, constant_liar=True, seed=self.seed,
            n_startup_trials=startup_trials(self.study.max_trials))
        return optuna.create_study(storage=storage(self.job_dir), sampler=sampler,
                                   study_name=STUDY_NAME, direction=self.study.goal.lower(),
                                   load_if_exists=True)

    def check_same_study(self, study):
        """A study folder holds one study: its config (metric, goal, parameters), trainer
        module and trainer flags are recorded in the Optuna study (`user_attrs["run"]`) and a
        rerun with others is refused; maxTrials, parallel trials, seed and trial timeout may
        change. Raises ConfigError naming what differs."""
        mine = {"spec": self.study.spec, "module": self.command[1:],
                "trainer": self.trainer_args}
        before = study.user_attrs.get("run")
        if before is None:
            study.set_user_attr("run", mine)
            return
        keys = [key for key in sorted({*before["spec"], *mine["spec"]})
                if before["spec"].get(key) != mine["spec"].get(key)]
        changed = [f"the study config differs in its {', '.join(keys)}"] if keys else []
        if before["module"] != mine["module"]:
            changed.append(f"the trainer was {shlex.join(before['module'])}, now "
                           f"{shlex.join(mine['module'])}")
        if before["trainer"] != mine["trainer"]:
            if mine["module"][-1:] == ["census.task"]:
                changed += changes(*(as_config(["--job-dir", ".", *run["trainer"]])
                                     for run in (before, mine)))
            else:
                changed.append(f"the trainer flags were {shlex.join(before['trainer'])!r}, now "
                               f"{shlex.join(mine['trainer'])!r}")
        if changed:
            raise ConfigError(f"{self.job_dir} holds a study run with other settings ("
                              + "; ".join(changed) + "): rerun with them to resume it, or give "
                              "another --job-dir")

    @staticmethod
    def counted(trial):
        """A trial that counts towards maxTrials: succeeded or failed, not cut short (Ctrl-C,
        a killed process) nor left out (`surplus`)."""
        from optuna.trial import TrialState
        return (trial.state in (TrialState.COMPLETE, TrialState.FAIL)
                and reason(trial) != "interrupted")

    def surplus(self, study, trial):
        """Whether `trial` would run past maxTrials: more trials than that counted or running
        before it (by number, which the storage gives out in order), as when several processes
        run the study. Checked before its trainer starts."""
        from optuna.trial import TrialState
        ahead = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and (
            self.counted(t) or t.state == TrialState.RUNNING)]
        return len(ahead) >= self.study.max_trials

    def objective(self, trial):
        """One trial: the trainer in a subprocess with this trial's flags, its own job dir and
        metric file; the metric it reported. Raises TrialFailed with the reason, TrialPruned
        for a trial past maxTrials (this process then stops asking for more)."""
        import optuna
        if self.surplus(trial.study, trial):
            trial.study.stop()
            raise optuna.TrialPruned("the study has its maxTrials trials")
        finished = len(trial.study.get_trials(deepcopy=False, states=(
            optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))  # as TPE counts
        trial.set_user_attr("proposed", "random" if finished < startup_trials(
            self.study.max_trials) else f"TPE, {finished} done")
        params = {p["parameterId"]: suggest(trial, p) for p in self.study.parameters}
        trial_id = str(trial.number + 1)  # Vertex numbers trials from 1
        # The trainer appends the trial id to --job-dir itself, as on Vertex AI: one rule.
        trial_dir = vertex_env.trial_dir(self.job_dir, trial_id)
        shutil.rmtree(trial_dir, ignore_errors=True)
        os.makedirs(trial_dir)
        metric_file = os.path.join(trial_dir, "hypertune", "output.metrics")
        argv = [*self.command, *self.trainer_args, "--job-dir", self.job_dir,
                f"{METRIC_FLAG}={self.study.metric}", *trial_flags(params)]
        for key, value in (("trial_id", trial_id), ("params", params),
                           ("job_dir", trial_dir), ("command", shlex.join(argv))):
            trial.set_user_attr(key, value)
        env = dict(os.environ, CLOUD_ML_HP_METRIC_FILE=metric_file, CLOUD_ML_TRIAL_ID=trial_id,
                   **self.trial_env)
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
                why = None if returncode == 0 else \
                    f"exit status {returncode}: {last_line(log.name)}"
            except subprocess.TimeoutExpired:
                processes.stop([proc], grace=0, group=True)
                why = f"timeout after {self.trial_timeout:g} s"
            except KeyboardInterrupt:  # one trial at a time: Ctrl-C lands here
                processes.stop([proc], grace=0, group=True)
                trial.set_user_attr("reason", "interrupted")
                raise
            finally:
                with self._lock:
                    self.running.pop(trial.number, None)
        trial.set_user_attr("seconds", round(time.monotonic() - start, 1))
        if self.stopping:
            why = "interrupted"
        if why is None and not os.path.isfile(metric_file):
            why = "no metric reported"
        if why:
            trial.set_user_attr("reason", why)
            raise TrialFailed(why)
        return read_metric(metric_file, self.study.metric)

    def stop(self):
        """Stop the study: kill every running trial's process group."""
        self.stopping = True
        with self._lock:
            for proc in self.running.values():
                processes.stop([proc], grace=0, group=True)

    def progress(self, study, trial):
        """After each trial: one line (its id, state, metric or reason, values, seconds); after
        the last of maxTrials, stop asking for more."""
        from optuna.trial import TrialState
        if trial.state == TrialState.PRUNED:
            return
        done = sum(self.counted(t) for t in study.get_trials(deepcopy=False))
        params = trial.user_attrs.get("params", {})
        shown = " ".join(f"{k}={_short(v)}" for k, v in params.items())
        result = (f"{self.study.metric}={trial.value:.4f}" if trial.value is not None
                  else f"({reason(trial) or 'failed'})")
        print(f"[tune] trial {trial.user_attrs.get('trial_id')} "
              f"{trial.state.name.replace('COMPLETE', 'SUCCEEDED').replace('FAIL', 'FAILED')}"
              f" {result} {shown} in {trial.user_attrs.get('seconds', 0):.0f} s "
              f"({done}/{self.study.max_trials})", file=self.out, flush=True)
        if done >= self.study.max_trials:  # other processes of the study ran the rest
            study.stop()

    def run(self, max_trials=None, parallel_trials=None):
        """Run the study to `max_trials` counted trials (resuming one that exists); returns
        the results table (a pandas DataFrame), also saved as JOB/trials.csv."""
        max_trials = max_trials or self.study.max_trials
        self.study.max_trials = max_trials
        parallel = parallel_trials or self.study.parallel_trials
        import optuna
        with quiet.warnings_ignored():  # optuna's ExperimentalWarnings (TPE, heartbeat)
            study = self.optuna_study()
            optuna.storages.fail_stale_trials(study)  # before counting: a killed process's
        self.check_same_study(study)
        done = sum(self.counted(t) for t in study.get_trials(deepcopy=False))
        remaining = max(0, max_trials - done)
        print(f"[tune] study {os.path.join(self.job_dir, STUDY_DB)}: {done} trials done, "
              f"{remaining} to run, {parallel} at a time", file=self.out, flush=True)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            def on_signal(signum, frame):  # Ctrl-C, or a launcher's SIGTERM: the same stop
                self.stop()
                raise KeyboardInterrupt
            previous = {s: signal.signal(s, on_signal)
                        for s in (signal.SIGINT, *processes.TERMINATION)}
        try:
            if remaining:  # a stopped trial is killed: its temporary files go with our folder
                with processes.private_tmpdir("census-tune-") as self.trial_env, \
                        quiet.warnings_ignored():
                    study.optimize(self.objective, n_trials=remaining,
                                   n_jobs=min(parallel, remaining), catch=(TrialFailed,),
                                   callbacks=[self.progress])
        except KeyboardInterrupt:
            self.stop()
            print("[tune] interrupted: running trials stopped; rerun the same command to "
                  "resume", file=self.out, flush=True)
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        table = results(study, self.study)
        _replace(os.path.join(self.job_dir, RESULTS), table.to_csv(index=False))
        keep_best(study, self.job_dir)
        return table


def storage(job_dir):
    """Optuna's storage of the study in `job_dir`: SQLite in JOB/study.db, with heartbeats
    (RDBStorage, the storage Optuna gives heartbeats to; its journal storage has none)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = urllib.parse.quote(os.path.abspath(os.path.join(job_dir, STUDY_DB)))  # any path
    with quiet.warnings_ignored():  # heartbeat_interval is experimental
        return optuna.storages.RDBStorage(
            f"sqlite:///{path}",
            engine_kwargs={"connect_args": {"timeout": 60}},  # wait for another's write
            heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD)


def load_study(job_dir):
    """The Optuna study `census tune` keeps in `job_dir`. Raises KeyError if there is none."""
    import optuna
    return optuna.load_study(study_name=STUDY_NAME, storage=storage(job_dir))


def _replace(path, text):
    """Write `text` to `path` whole: readers (another process of the study) never see half."""
    part = f"{path}.{os.getpid()}.part"
    Path(part).write_text(text)
    os.replace(part, path)


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def results(optuna_study, study):
    """One row per trial: trial id, each parameter, the metric, `proposed` ("random", or "TPE,
    N done": the finished trials TPE had to model when it drew the values), state, seconds,
    reason."""
    import pandas as pd
    from optuna.trial import TrialState
    rows = []
    for t in optuna_study.get_trials(deepcopy=False):
        if t.state == TrialState.PRUNED:  # past maxTrials: never ran
            continue
        row = {"trial": int(t.user_attrs.get("trial_id", t.number + 1))}
        row.update(t.user_attrs.get("params", {}))
        row[study.metric] = t.value
        row["proposed"] = t.user_attrs.get("proposed")
        row["state"] = {"COMPLETE": "SUCCEEDED", "FAIL": "FAILED"}.get(t.state.name,
                                                                        t.state.name)
        row["seconds"] = t.user_attrs.get("seconds")
        row["reason"] = reason(t)
        rows.append(row)
    columns = ["trial", *(p["parameterId"] for p in study.parameters), study.metric,
               "proposed", "state", "seconds", "reason"]
    return pd.DataFrame(rows, columns=columns)


def best_trial(optuna_study):
    """The best finished trial of an Optuna study, or None if none succeeded."""
    try:
        return optuna_study.best_trial
    except ValueError:  # no trial succeeded
        return None


def keep_best(optuna_study, job_dir):
    """The best trial's export, copied to JOB/export/census/<version>, and JOB/best.json."""
    best = best_trial(optuna_study)
    if best is None:
        return None
    quiet.import_tensorflow()  # (export reads and copies with tf.io.gfile: gs:// too)
    from census import export
    trial_dir = best.user_attrs["job_dir"]
    versions = export.list_versions(os.path.join(trial_dir, "export", "census"))
    info = {"trial": best.user_attrs["trial_id"], "value": best.value,
            "params": best.user_attrs["params"], "job_dir": trial_dir, "export": None}
    if versions:
        target = os.path.join(job_dir, "export", "census")
        info["export"] = os.path.join(target, os.path.basename(versions[-1]))
        kept = Path(job_dir, BEST)
        if not (kept.is_file() and json.loads(kept.read_text()) == info
                and os.path.isdir(info["export"])):  # not there yet (another tuner's work)
            shutil.rmtree(target, ignore_errors=True)  # one version: the best trial's
            with contextlib.suppress(FileExistsError):  # another tuner of the study put it
                export.publish(versions[-1], target)
    _replace(os.path.join(job_dir, BEST), json.dumps(info, indent=2) + "\n")
    return info


def tune(config, trainer, max_trials=None, parallel_trials=None, command=None,
         trial_timeout=None, seed=None, out=None):
    """Run the study in `config` (a path or a Study) locally, each trial the course's trainer
    configured by `trainer` (a TrainConfig, or its command line: a list of str; its job dir is
    the study's folder) — or, with `command` (argv of another trainer), that trainer's flags.
    Returns the results table (a pandas DataFrame). Raises ConfigError."""
    study = config if isinstance(config, Study) else read_config(config)
    study = dataclasses.replace(study, spec=json.loads(json.dumps(study.spec)))
    if command is None or command[-1] == "census.task":  # the course's trainer: we know it
        trainer = as_config(trainer)
        check_against_trainer(study)
    tuner = LocalTuner(study, trainer, command, trial_timeout, seed, out)
    return tuner.run(max_trials, parallel_trials)
