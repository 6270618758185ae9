"""Checks for chapter 8's exercises: a study over learning rate and batch size, a real local
study, and the best trial of a results table."""
import json
import math
import re
from pathlib import Path

from census import course, quiet
from census.course.checks.core import CheckFailed, call, expect, passed

__all__ = ["check_learning_rate_study", "check_run_study", "check_best_trial"]

_SCALE_WORDS = {"UNIT_LOG_SCALE": "log", "UNIT_REVERSE_LOG_SCALE": "reverse log"}
TRAINER_METRICS = {"accuracy": "MAXIMIZE", "auc": "MAXIMIZE", "loss": "MINIMIZE"}


def check_learning_rate_study(learning_rate_study, max_trials, parallel_trials):
    """learning_rate_study(max_trials, parallel_trials): the 2017-form config of a study that
    maximizes auc over a log-scaled learning rate and an integer batch size."""
    from census.tuning import study as tuning_study
    what = f"learning_rate_study({max_trials}, {parallel_trials})"
    config = call(learning_rate_study, max_trials, parallel_trials, what=what)
    expect(isinstance(config, dict), f"{what} returned a {type(config).__name__}, not a dict",
           "return the dict that hptuning_config.yaml would hold: "
           "{'trainingInput': {'hyperparameters': {...}}}")
    expect("trainingInput" in config and "hyperparameters" in config.get("trainingInput", {}),
           f"the top-level keys are {sorted(config)}",
           "nest it as the 2017 file does: {'trainingInput': {'hyperparameters': {...}}}")
    h = config["trainingInput"]["hyperparameters"]
    try:
        study = tuning_study.from_legacy(h)
    except (tuning_study.ConfigError, KeyError, TypeError, ValueError) as error:
        message = str(error) if not isinstance(error, KeyError) else f"missing key {error}"
        raise CheckFailed(f"census.tuning cannot read it: {message}",
                          "each parameter needs parameterName, type and its range (minValue "
                          "and maxValue); the study needs goal and hyperparameterMetricTag"
                          ) from None
    metric, goal = study.metric, study.goal
    expect(metric in TRAINER_METRICS, f"the metric is {metric!r}: the trainer does not report it",
           f"the trainer reports {', '.join(TRAINER_METRICS)}: use 'auc'")
    expect(goal == TRAINER_METRICS[metric], f"the goal is to {goal.lower()} {metric}",
           f"a higher {metric} is better: MAXIMIZE it" if goal == "MINIMIZE"
           else f"a lower {metric} is better: MINIMIZE it")
    expect(metric == "auc", f"the metric is {metric}, not auc", "hyperparameterMetricTag: 'auc'")
    names = [p["parameterId"] for p in study.parameters]
    unknown = [n for n in names if not tuning_study.is_trainer_flag(n)]
    expect(not unknown, f"the trainer has no flag --{unknown[0] if unknown else ''}",
           "the tuner passes --NAME=value to the trainer: name each parameter after its flag "
           "(python -m census.task --help): learning-rate, train-batch-size")
    expect(sorted(names) == ["learning-rate", "train-batch-size"],
           f"the parameters are {names}", "tune exactly two: learning-rate and train-batch-size")
    params = {p["parameterId"]: p for p in study.parameters}
    lr = params["learning-rate"]
    expect("doubleValueSpec" in lr, "the learning rate is not a DOUBLE",
           "a learning rate is a real number: type DOUBLE")
    lo, hi = lr["doubleValueSpec"]["minValue"], lr["doubleValueSpec"]["maxValue"]
    expect(lr.get("scaleType") == "UNIT_LOG_SCALE",
           f"the learning rate is searched on {lr.get('scaleType', 'no scale')}",
           "use scaleType UNIT_LOG_SCALE: 0.0001 to 0.001 deserves as many trials as 0.01 to 0.1")
    expect(1e-5 <= lo and hi <= 1.0 and hi / lo >= 10,
           f"the learning rate goes from {lo:g} to {hi:g}",
           "search at least a factor of ten inside 1e-5 … 1 (the trainer's default is 0.001): "
           "from 0.0001 to 0.1")
    batch = params["train-batch-size"]
    expect("doubleValueSpec" not in batch and "categoricalValueSpec" not in batch,
           "the batch size is not a whole number", "make train-batch-size an INTEGER (or "
           "DISCRETE, with whole numbers)")
    sizes = batch.get("discreteValueSpec", {}).get("values", [])
    expect(all(float(v).is_integer() for v in sizes), f"the batch sizes {sizes} are not all "
           "whole numbers", "a batch holds a whole number of rows: list whole numbers")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):  # the flags the tuner would pass to 20 trials
        values = {p["parameterId"]: tuning_study.suggest(sampler.ask(), p) for p in study.parameters}
        problem = tuning_study.trainer_error(tuning_study.trial_flags(values))
        expect(problem is None, f"a trial would fail: {' '.join(tuning_study.trial_flags(values))} → "
               f"{problem}", "every value the study can choose must be one the trainer's flag "
               "accepts: check each parameter's type and range")
    blo, bhi = ((int(min(sizes)), int(max(sizes))) if sizes else
                (batch["integerValueSpec"]["minValue"], batch["integerValueSpec"]["maxValue"]))
    expect(16 <= blo < bhi <= 2048, f"the batch size goes from {blo} to {bhi}",
           "search a few powers of two inside 16 … 2048: from 32 to 512")
    expect(study.max_trials == max_trials, f"maxTrials is {study.max_trials}, not {max_trials}",
           "maxTrials: max_trials (the argument)")
    expect(study.parallel_trials == parallel_trials,
           f"maxParallelTrials is {study.parallel_trials}, not {parallel_trials}",
           "maxParallelTrials: parallel_trials (the argument)")
    passed(f"maximize auc over learning-rate {lo:g}…{hi:g} (log) and train-batch-size "
           f"{blo}…{bhi} ({_SCALE_WORDS.get(batch.get('scaleType'), 'linear')}), "
           f"{max_trials} trials, {parallel_trials} at a time")


def _journal_trials(study_dir):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from census.tuning import local
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with quiet.warnings_ignored():
        storage = JournalStorage(JournalFileBackend(str(Path(study_dir, local.JOURNAL))))
        return optuna.load_study(study_name=local.STUDY_NAME, storage=storage).get_trials()


def check_run_study(run_study, study, files, study_dir, trials, train_steps):
    """run_study(study, files, study_dir, trials, train_steps) runs `trials` short trials of
    `study`, two at a time, with census.tuning, and returns the results table."""
    import pandas as pd
    from census.tuning import local
    course.fresh_dir(study_dir)
    what = f"run_study(STUDY, files, {course.rel(study_dir)!r}, {trials}, {train_steps})"
    table = call(run_study, study, files, study_dir, trials, train_steps, what=what)
    expect(isinstance(table, pd.DataFrame), f"{what} returned a {type(table).__name__}",
           "return the table that census.local.tune returns")
    journal = Path(study_dir, local.JOURNAL)
    expect(journal.is_file(), f"no study in {course.rel(study_dir)}",
           "the trainer's --job-dir is the study's folder: give '--job-dir', study_dir in the "
           "trainer flags")
    expect(len(table) != study.max_trials or trials == study.max_trials,
           f"{len(table)} trials ran: the config's maxTrials, not {trials}",
           "pass max_trials=trials to local.tune")
    expect(len(table) == trials, f"{len(table)} trials instead of {trials}",
           "pass max_trials=trials to local.tune, in a fresh study folder")
    failed = table[table["state"] != "SUCCEEDED"]
    expect(failed.empty, f"trial {failed['trial'].iloc[0] if len(failed) else ''} "
           f"{failed['state'].iloc[0] if len(failed) else ''}: "
           f"{failed['reason'].iloc[0] if len(failed) else ''}",
           "read trainer.log in the trial's folder (study_dir/<trial>/): every trainer flag "
           "must be a real one, with its value as a string")
    steps = []
    for trial in table["trial"]:
        log = Path(study_dir, str(trial), "trainer.log").read_text(errors="replace")
        found = re.findall(r'"global_step": (\d+)', log)
        steps.append(int(found[-1]) if found else None)
    expect(all(s == train_steps for s in steps), f"the trials trained {steps} steps, not "
           f"{train_steps}", "give the trainer '--train-steps', str(train_steps) and "
           "'--eval-every-steps', str(train_steps)")
    frozen = _journal_trials(study_dir)
    starts = [t.datetime_start for t in frozen if t.datetime_start]
    ends = [t.datetime_complete for t in frozen if t.datetime_complete]
    expect(trials < 2 or (starts and ends and max(starts[:2]) < min(ends[:2])),
           "the trials ran one after the other",
           "run two at a time: parallel_trials=2 (each trial is its own process)")
    for p in study.parameters:
        spec = p.get("integerValueSpec") or p.get("doubleValueSpec")
        if spec:
            values = table[p["parameterId"]]
            expect(values.between(spec["minValue"], spec["maxValue"]).all(),
                   f"{p['parameterId']} took {list(values)}", "let the tuner choose the "
                   "values: do not pass the parameters yourself in the trainer flags")
    best = json.loads(Path(study_dir, "best.json").read_text())
    metric = study.metric
    passed(f"{len(table)} trials of {train_steps} steps, two at a time: best {metric} "
           f"{best['value']:.4f} (trial {best['trial']}), export in "
           f"{course.rel(best['export']) if best['export'] else 'none'}")


def _results_table(study, seed, n=6):
    """A results table as census.tuning writes it (one FAILED trial among `n`), from an
    in-memory Optuna study whose trials take values the study's parameters allow."""
    import optuna
    from optuna.trial import TrialState, create_trial
    from census.tuning import local, study as tuning_study
    import random
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(seed)
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    memory = optuna.create_study(direction=study.goal.lower())
    failed = rng.randrange(1, n - 1)
    for number in range(n):
        params = {p["parameterId"]: tuning_study.suggest(sampler.ask(), p) for p in study.parameters}
        state = TrialState.FAIL if number == failed else TrialState.COMPLETE
        attrs = {"trial_id": str(number + 1), "params": params, "seconds": rng.uniform(5, 20)}
        if state == TrialState.FAIL:
            attrs["reason"] = "exit status 1"
        value = None if state == TrialState.FAIL else round(rng.uniform(0.3, 0.9), 4)
        memory.add_trial(create_trial(state=state, value=value, user_attrs=attrs))
    return local.results(memory, study), memory


def check_best_trial(best_trial, study, seed=0):
    """best_trial(table, study) → (trial id, {parameter: value}) of the best SUCCEEDED trial,
    in the direction of the study's goal."""
    for k in range(100):  # a table where the usual mistakes give answers of their own
        table, memory = _results_table(study, seed * 1000 + k)
        done = table[table["state"] == "SUCCEEDED"].set_index("trial")[study.metric]
        ids = {int(done.idxmax()), int(done.idxmin())}
        if len(ids | {i - 1 for i in ids}) == 4:
            break
    what = f"best_trial(table, study)  # goal {study.goal} {study.metric}"
    got = call(best_trial, table.copy(), study, what=what)
    best = memory.best_trial
    want_id, want_params = int(best.user_attrs["trial_id"]), best.user_attrs["params"]
    expect(isinstance(got, tuple) and len(got) == 2,
           f"{what} returned {type(got).__name__}, not a pair", "return (trial, params)")
    trial, params = got
    row_of_best = table.index[table["trial"] == want_id][0]
    expect(not (trial == row_of_best and row_of_best != want_id),
           f"{trial} is the row number of the best trial, not its id",
           "return the value of its 'trial' column")
    worst = (table.loc[table[study.metric].idxmin() if study.goal == "MAXIMIZE"
                       else table[study.metric].idxmax(), "trial"])
    expect(not (trial == worst and worst != want_id),
           f"trial {trial} has the {'lowest' if study.goal == 'MAXIMIZE' else 'highest'} "
           f"{study.metric}: the worst one", f"the goal is to {study.goal.lower()} "
           f"{study.metric}: read study.goal (idxmax for MAXIMIZE, idxmin for MINIMIZE)")
    expect(isinstance(trial, (int,)) or hasattr(trial, "item"),
           f"the trial is {trial!r}, not a number", "return int(row['trial'])")
    expect(trial == want_id, f"trial {trial} is not the best one",
           f"keep the SUCCEEDED rows, then take the one with the best {study.metric}")
    expect(isinstance(params, dict), f"the parameters are a {type(params).__name__}",
           "return them as a dict: {parameterId: value}")
    names = [p["parameterId"] for p in study.parameters]
    expect(sorted(params) == sorted(names), f"the parameters have the keys {sorted(params)}",
           f"keep only the study's parameters: {names}")
    for name in names:
        a, b = params[name], want_params[name]
        close = isinstance(b, str) and a == b or (not isinstance(b, str) and
                                                   math.isclose(float(a), float(b)))
        expect(close, f"{name} is {a!r}, not the best trial's {b!r}",
               "take every parameter from the same row as the best metric")
    passed(f"trial {want_id} is the best of {len(table)} ({study.goal.lower()} "
           f"{study.metric}: {best.value:.4f})")
