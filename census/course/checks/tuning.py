"""Checks for chapter 8's exercises: a study over learning rate and batch size, a real local
study, and choosing on the validation split before scoring the test split once."""
import json
import re
from pathlib import Path

from census import course, quiet
from census.course.checks.core import CheckFailed, call, count_rows, expect, passed

__all__ = ["check_learning_rate_study", "check_run_study", "check_final_score"]

_SCALE_WORDS = {"UNIT_LOG_SCALE": "log", "UNIT_REVERSE_LOG_SCALE": "reverse log"}
TRAINER_METRICS = {"accuracy": "MAXIMIZE", "auc": "MAXIMIZE", "loss": "MINIMIZE"}


def check_learning_rate_study(learning_rate_study, max_trials, parallel_trials):
    """learning_rate_study(max_trials, parallel_trials): the 2017-form config of a study that
    maximizes auc over a log-scaled learning rate and an integer batch size."""
    from census.tuning import study as tuning_study
    what = f"learning_rate_study({max_trials}, {parallel_trials})"
    config = call(learning_rate_study, max_trials, parallel_trials, what=what)
    expect(isinstance(config, dict), f"{what} returned a {type(config).__name__}, not a dict",
           "return what hptuning_config.yaml holds, read as Python: nested dicts",
           "return {'trainingInput': {'hyperparameters': {...}}}")
    expect("trainingInput" in config and "hyperparameters" in config.get("trainingInput", {}),
           f"the top-level keys are {sorted(config)}",
           "open hptuning_config.yaml: your dict nests the same way",
           "nest it as the 2017 file does: {'trainingInput': {'hyperparameters': {...}}}")
    h = config["trainingInput"]["hyperparameters"]
    try:
        study = tuning_study.from_legacy(h)
    except (tuning_study.ConfigError, KeyError, TypeError, ValueError) as error:
        message = str(error) if not isinstance(error, KeyError) else f"missing key {error}"
        raise CheckFailed(f"census.tuning cannot read it: {message}",
                          "compare your keys with hptuning_config.yaml's, one by one",
                          "each parameter needs parameterName, type and its range (minValue "
                          "and maxValue); the study needs goal and hyperparameterMetricTag"
                          ) from None
    metric, goal = study.metric, study.goal
    expect(metric in TRAINER_METRICS, f"the metric is {metric!r}: the trainer does not report it",
           "the tag names a metric the trainer reports to the tuner, by its plain name",
           f"the trainer reports {', '.join(TRAINER_METRICS)}: use 'auc'")
    expect(goal == TRAINER_METRICS[metric], f"the goal is to {goal.lower()} {metric}",
           f"is a higher {metric} better, or a lower one?",
           f"a higher {metric} is better: MAXIMIZE it" if goal == "MINIMIZE"
           else f"a lower {metric} is better: MINIMIZE it")
    expect(metric == "auc", f"the metric is {metric}, not auc",
           "the study is asked to maximize the AUC", "hyperparameterMetricTag: 'auc'")
    names = [p["parameterId"] for p in study.parameters]
    unknown = [n for n in names if not tuning_study.field(n)]
    expect(not unknown, f"the trainer has no flag --{unknown[0] if unknown else ''}",
           "the tuner passes --NAME=value to the trainer: a parameter is named after the "
           "flag it sets (python -m census.task --help lists them)",
           "name each parameter after its flag: learning-rate, train-batch-size")
    expect(sorted(names) == ["learning-rate", "train-batch-size"],
           f"the parameters are {names}", "the study tunes two knobs, no more",
           "tune exactly two: learning-rate and train-batch-size")
    params = {p["parameterId"]: p for p in study.parameters}
    lr = params["learning-rate"]
    expect("doubleValueSpec" in lr, "the learning rate is not a DOUBLE",
           "a learning rate is a real number", "type: DOUBLE")
    lo, hi = lr["doubleValueSpec"]["minValue"], lr["doubleValueSpec"]["maxValue"]
    expect(lr.get("scaleType") == "UNIT_LOG_SCALE",
           f"the learning rate is searched on {lr.get('scaleType', 'no scale')}",
           "0.0001 to 0.001 deserves as many trials as 0.01 to 0.1: chapter 8 shows the "
           "scale that spreads trials that way", "scaleType: UNIT_LOG_SCALE")
    expect(1e-5 <= lo and hi <= 1.0 and hi / lo >= 10,
           f"the learning rate goes from {lo:g} to {hi:g}",
           "search at least a factor of ten, inside 1e-5 … 1 (the trainer's default is 0.001)",
           "minValue: 0.0001, maxValue: 0.1")
    batch = params["train-batch-size"]
    expect("doubleValueSpec" not in batch and "categoricalValueSpec" not in batch,
           "the batch size is not a whole number", "a batch holds a whole number of rows",
           "make train-batch-size an INTEGER (or DISCRETE, with whole numbers)")
    sizes = batch.get("discreteValueSpec", {}).get("values", [])
    expect(all(float(v).is_integer() for v in sizes), f"the batch sizes {sizes} are not all "
           "whole numbers", "a batch holds a whole number of rows", "list whole numbers")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):  # the flags the tuner would pass to 20 trials
        values = {p["parameterId"]: tuning_study.suggest(sampler.ask(), p)
                  for p in study.parameters}
        flags = tuning_study.trial_flags(values)
        problem = tuning_study.trainer_error(values)
        expect(problem is None, f"a trial would fail: {' '.join(flags)} → {problem}",
               "every value the study can choose must be one the trainer's flag accepts",
               "check each parameter's type and range against python -m census.task --help")
    blo, bhi = ((int(min(sizes)), int(max(sizes))) if sizes else
                (batch["integerValueSpec"]["minValue"], batch["integerValueSpec"]["maxValue"]))
    expect(16 <= blo < bhi <= 2048, f"the batch size goes from {blo} to {bhi}",
           "search a few powers of two inside 16 … 2048", "minValue: 32, maxValue: 512")
    expect(study.max_trials == max_trials, f"maxTrials is {study.max_trials}, not {max_trials}",
           "the number of trials is an argument of your function", "maxTrials: max_trials")
    expect(study.parallel_trials == parallel_trials,
           f"maxParallelTrials is {study.parallel_trials}, not {parallel_trials}",
           "how many trials run at once is an argument of your function",
           "maxParallelTrials: parallel_trials")
    passed(f"maximize auc over learning-rate {lo:g}…{hi:g} (log) and train-batch-size "
           f"{blo}…{bhi} ({_SCALE_WORDS.get(batch.get('scaleType'), 'linear')}), "
           f"{max_trials} trials, {parallel_trials} at a time")


def _study_trials(study_dir):
    from census.tuning import local
    with quiet.warnings_ignored():
        return local.load_study(study_dir).get_trials()


def check_run_study(run_study, study, files, study_dir, trials, train_steps):
    """run_study(study, files, study_dir, trials, train_steps) runs `trials` short trials of
    `study`, two at a time, with census.tuning, and returns the results table."""
    import pandas as pd

    from census.tuning import local
    course.fresh_dir(study_dir)
    what = f"run_study(STUDY, files, {course.rel(study_dir)!r}, {trials}, {train_steps})"
    table = call(run_study, study, files, study_dir, trials, train_steps, what=what)
    expect(isinstance(table, pd.DataFrame), f"{what} returned a {type(table).__name__}",
           "the tuner returns its results table: pass it on",
           "return what census.tuning.local.tune returns")
    expect(Path(study_dir, local.STUDY_DB).is_file(), f"no study in {course.rel(study_dir)}",
           "the tuner keeps its study where the trainer flags' job dir points",
           "the trainer's --job-dir is the study's folder: give '--job-dir', study_dir in the "
           "trainer flags")
    expect(len(table) != study.max_trials or trials == study.max_trials,
           f"{len(table)} trials ran: the config's maxTrials, not {trials}",
           "the config's maxTrials applies unless tune is told otherwise",
           "pass max_trials=trials to local.tune")
    expect(len(table) == trials, f"{len(table)} trials instead of {trials}",
           "the number of trials is an argument of tune",
           "pass max_trials=trials to local.tune, in a fresh study folder")
    failed = table[table["state"] != "SUCCEEDED"]
    expect(failed.empty, f"trial {failed['trial'].iloc[0] if len(failed) else ''} "
           f"{failed['state'].iloc[0] if len(failed) else ''}: "
           f"{failed['reason'].iloc[0] if len(failed) else ''}",
           "read trainer.log in the trial's folder (study_dir/<trial>/): it says why",
           "every trainer flag must be a real one (python -m census.task --help), with its "
           "value as a string")
    steps = []
    for trial in table["trial"]:
        log = Path(study_dir, str(trial), "trainer.log").read_text(errors="replace")
        found = re.findall(r'"global_step": (\d+)', log)
        steps.append(int(found[-1]) if found else None)
    expect(all(s == train_steps for s in steps), f"the trials trained {steps} steps, not "
           f"{train_steps}", "each trial is the trainer, run with the flags you give it",
           "give the trainer '--train-steps', str(train_steps) and "
           "'--eval-every-steps', str(train_steps)")
    frozen = _study_trials(study_dir)
    starts = [t.datetime_start for t in frozen if t.datetime_start]
    ends = [t.datetime_complete for t in frozen if t.datetime_complete]
    expect(trials < 2 or (starts and ends and max(starts[:2]) < min(ends[:2])),
           "the trials ran one after the other",
           "how many trials run at once is an argument of tune",
           "run two at a time: parallel_trials=2 (each trial is its own process)")
    for p in study.parameters:
        spec = p.get("integerValueSpec") or p.get("doubleValueSpec")
        if spec:
            values = table[p["parameterId"]]
            expect(values.between(spec["minValue"], spec["maxValue"]).all(),
                   f"{p['parameterId']} took {list(values)}",
                   "the tuner chooses the values of the study's parameters",
                   "do not pass the parameters yourself in the trainer flags")
    best = json.loads(Path(study_dir, local.BEST).read_text())
    metric = study.metric
    passed(f"{len(table)} trials of {train_steps} steps, two at a time: best {metric} "
           f"{best['value']:.4f} (trial {best['trial']}), export in "
           f"{course.rel(best['export']) if best['export'] else 'none'}")


# The trials of the small study check_final_score lays out (the 2017 study's parameters).
TRIAL_PARAMS = ({"first-layer-size": 100, "num-layers": 4, "scale-factor": 0.7},
                {"first-layer-size": 60, "num-layers": 2, "scale-factor": 0.5},
                {"first-layer-size": 200, "num-layers": 3, "scale-factor": 0.3})
FAILED_PARAMS = {"first-layer-size": 500, "num-layers": 15, "scale-factor": 0.9}
_trained = {}  # (train file, validation file, steps) -> [(params, export, validation scores)]


def _candidates(files, train_steps):
    """The trials' models, trained `train_steps` steps and exported once per session, each
    scored on the validation split (what a trial reports to the tuner)."""
    import atexit
    import shutil
    import tempfile

    import tf_keras as keras

    from census import export, inputs, model, predict
    key = (files.train, files.validation, train_steps)
    if key not in _trained:
        folder = tempfile.mkdtemp(prefix="census-trials-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        made = []
        for n, params in enumerate(TRIAL_PARAMS):
            keras.utils.set_random_seed(n)
            with quiet.logs():
                net = model.build_model(**{k.replace("-", "_"): v for k, v in params.items()},
                                        decay_steps=train_steps or None)
                if train_steps:
                    net.fit(inputs.input_fn([files.train], batch_size=128),
                            steps_per_epoch=train_steps, epochs=1, verbose=0)
                path = export.export_model(net, f"{folder}/{n}", "JSON")
                made.append((params, path, predict.score(path, [files.validation])))
        _trained[key] = made
    return _trained[key]


def _lay_out_study(study, files, study_dir, train_steps):
    """A finished study in study_dir, as `census tune` leaves one: trials.csv (one row per
    trial, the metric measured on the validation split) and a folder per trial, with its
    export under export/census/<version>/ when it succeeded. The best trial is the second, the
    third failed, the worst is the last. Returns (table, {trial id: export version dir})."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from census import export
    from census.tuning import local
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made = _candidates(files, train_steps)
    ranked = sorted(made, key=lambda c: c[2][study.metric],
                    reverse=study.goal == "MAXIMIZE")  # best first
    order = [*ranked[1:-1], ranked[0], None, ranked[-1]]  # the others, best, failed, worst
    memory = optuna.create_study(direction=study.goal.lower())
    exports = {}
    for number, candidate in enumerate(order, 1):
        trial_dir = Path(study_dir, str(number))
        trial_dir.mkdir(parents=True)
        if candidate is None:
            (trial_dir / "trainer.log").write_text(
                "ValueError: the trial ran out of memory building 15 layers\n")
            attrs = {"trial_id": str(number), "params": FAILED_PARAMS, "seconds": 3.2,
                     "reason": "exit status 1: ValueError: the trial ran out of memory "
                               "building 15 layers"}
            memory.add_trial(create_trial(state=TrialState.FAIL, user_attrs=attrs))
            continue
        params, path, scores = candidate
        exports[number] = export.publish(path, str(trial_dir / "export" / "census"))
        attrs = {"trial_id": str(number), "params": params, "seconds": 20.0 + number}
        memory.add_trial(create_trial(state=TrialState.COMPLETE, value=scores[study.metric],
                                      user_attrs=attrs))
    table = local.results(memory, study)
    table.to_csv(Path(study_dir, local.RESULTS), index=False)
    return table, exports


def check_final_score(final_score, study, files, study_dir, train_steps):
    """final_score(study_dir, study, test_file) → (trial id, scores): the trial of a finished
    study with the best validation metric (study.goal), and the scores of its export on the
    test split (census.predict.score) — the only export that meets the test split.

    The check lays out a small finished study in study_dir first: real models, trained
    `train_steps` steps, exported, each scored on the validation split; one trial failed."""
    import tensorflow as tf

    from census import predict
    course.fresh_dir(study_dir)
    table, exports = _lay_out_study(study, files, study_dir, train_steps)
    done = table[table["state"] == "SUCCEEDED"].set_index("trial")[study.metric]
    best = int(done.idxmax() if study.goal == "MAXIMIZE" else done.idxmin())
    worst = int(done.idxmin() if study.goal == "MAXIMIZE" else done.idxmax())
    what = f"final_score(study_dir, study, test_file)  # goal {study.goal} {study.metric}"
    scored, opened = [], set()
    original_score, original_load = predict.score, tf.saved_model.load

    def score(model_dir, score_files, *args, **kwargs):
        scored.append((str(model_dir), [str(f) for f in score_files]))
        return original_score(model_dir, score_files, *args, **kwargs)

    def load(path, *args, **kwargs):
        opened.add(Path(str(path)).resolve())
        return original_load(path, *args, **kwargs)

    predict.score, tf.saved_model.load = score, load
    try:
        with quiet.logs():
            got = call(final_score, study_dir, study, files.test, what=what)
    finally:
        predict.score, tf.saved_model.load = original_score, original_load
    seen = sorted(n for n, path in exports.items()
                  if any(p == Path(path).resolve() or Path(path).resolve() in p.parents
                         for p in opened))
    expect(len(seen) <= 1, f"final_score opened the exports of trials {seen}; only the one "
           "chosen should ever meet the test split",
           "each trial's validation score is in trials.csv already: choose from the table; "
           "the test split is for the one model chosen, once",
           "pick the best row of trials.csv, then score that trial's export alone on the test "
           "split")
    expect(isinstance(got, tuple) and len(got) == 2,
           f"{what} returned {type(got).__name__}, not a pair",
           "return the trial chosen and its test scores", "return trial, scores")
    trial, scores = got
    expect(not isinstance(trial, bool) and isinstance(trial, int) or hasattr(trial, "item"),
           f"the trial is {trial!r}, not a number", "a trial is named by its id, a number",
           "return int(row['trial'])")
    trial = int(trial)
    tied = trial in done.index and done[trial] == done[best]  # as good as the best: fine
    row_of_best = int(table.index[table["trial"] == best][0])
    expect(tied or not (trial == row_of_best and row_of_best != best),
           f"{trial} is the row number of the best trial, not its id",
           "trials.csv numbers its trials in a column of its own",
           "return the value of the best row's 'trial' column")
    expect(tied or trial != worst, f"trial {trial} has the "
           f"{'lowest' if study.goal == 'MAXIMIZE' else 'highest'} {study.metric}: the worst one",
           "which way is better for this study's metric?",
           f"read study.goal: {study.goal} (idxmax for MAXIMIZE, idxmin for MINIMIZE)")
    expect(trial in exports, f"trial {trial} has no export (state "
           f"{table.set_index('trial')['state'].get(trial, 'unknown')})",
           "only a trial that succeeded has a model", "keep the rows whose state is SUCCEEDED")
    expect(tied, f"trial {trial} is not the best on the validation split",
           f"the best trial has the best {study.metric} in trials.csv",
           f"keep the SUCCEEDED rows, then take the one with the best {study.metric}")
    expect(isinstance(scores, dict) and {"accuracy", "auc", "loss"} <= set(scores),
           f"the scores are {str(scores)[:80]}",
           "census.predict.score scores an export on labelled files",
           "return what predict.score(export, [test_file]) returns")
    test_rows = count_rows(files.test)
    expect(scores.get("rows") != count_rows(files.validation),
           f"these scores are on the {scores.get('rows'):,} rows of the validation split",
           "the validation split chose the model: the final score comes from data that "
           "took no part in any choice", "predict.score(export, [test_file])")
    expect(scores.get("rows", test_rows) == test_rows,
           f"these scores are on {scores.get('rows'):,} rows, not the test split's {test_rows:,}",
           "score the whole test file, once", "predict.score(export, [test_file])")
    truth = original_score(exports[trial], [files.test])
    expect(all(abs(float(scores[k]) - truth[k]) < 2e-3 for k in ("accuracy", "auc", "loss")),
           f"the scores {({k: round(float(scores[k]), 4) for k in ('accuracy', 'auc')})} are "
           f"not the test split's for trial {trial} "
           f"({({k: round(truth[k], 4) for k in ('accuracy', 'auc')})})",
           "score the export of the trial you chose, in its folder",
           f"predict.score(export.list_versions(f'{{study_dir}}/{trial}/export/census')[-1], "
           "[test_file])")
    passed(f"trial {trial} has the best validation {study.metric} "
           f"({done[trial]:.4f}) of {len(table)} trials; its export alone met the test split: "
           f"accuracy {truth['accuracy']:.4f}, AUC {truth['auc']:.4f} on {truth['rows']:,} rows")
