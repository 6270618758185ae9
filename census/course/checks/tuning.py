"""Checks for chapter 8's exercises: a Vertex AI studySpec of your own, an Optuna study in
plain code, and choosing on the validation split before scoring the test split once."""
import logging
from pathlib import Path

from census import course, quiet
from census.course.checks.core import CheckFailed, call, count_rows, expect, passed

__all__ = ["check_study_spec", "check_run_study", "check_final_score"]

TRAINER_METRICS = {"accuracy": "MAXIMIZE", "auc": "MAXIMIZE", "loss": "MINIMIZE"}
SCALES = ("UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE", "UNIT_REVERSE_LOG_SCALE")


def parse_study_spec(spec):
    """`spec` (a dict, REST's camelCase or Python's snake_case names) read as Vertex AI reads
    it, into `google.cloud.aiplatform_v1.StudySpec`, and given back as REST's camelCase dict.
    Raises CheckFailed, naming what protobuf refused."""
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format

    from census.distribute import vertex
    message = aiplatform_v1.StudySpec.pb(aiplatform_v1.StudySpec())
    try:
        json_format.ParseDict(spec, message)
    except json_format.ParseError as error:
        text = " ".join(str(error).split())
        raise CheckFailed(
            f"Vertex AI cannot read it as a StudySpec: {text[:240]}",
            "compare each key and value with the StudySpec reference: metrics (metricId, "
            "goal), parameters (parameterId, one value spec, scaleType)",
            "goal and scaleType are names in capitals (MAXIMIZE, UNIT_LOG_SCALE); a double "
            "range is {'doubleValueSpec': {'minValue': …, 'maxValue': …}}, a list of numbers "
            "{'discreteValueSpec': {'values': [...]}}") from None
    return vertex.to_dict(message)


def check_study_spec(study_spec, min_rate, max_rate, batch_sizes):
    """study_spec(min_rate, max_rate, batch_sizes) → a Vertex AI StudySpec (dict) that
    maximizes the trainer's auc over learning-rate in [min_rate, max_rate] on a log scale and
    train-batch-size among `batch_sizes`. It must parse as google.cloud.aiplatform_v1.StudySpec
    and be a study census.tuning.study runs against the trainer."""
    from census.tuning import study as tuning_study
    what = f"study_spec({min_rate}, {max_rate}, {list(batch_sizes)})"
    spec = call(study_spec, min_rate, max_rate, list(batch_sizes), what=what)
    expect(isinstance(spec, dict), f"{what} returned a {type(spec).__name__}, not a dict",
           "a StudySpec in JSON is a dict of dicts and lists",
           "return {'metrics': [...], 'parameters': [...]}")
    expect("trainingInput" not in spec and "hyperparameters" not in spec,
           f"the top-level keys are {sorted(spec)}: the 2017 form",
           "AI Platform's trainingInput is retired: Vertex AI calls the study a studySpec",
           "return {'metrics': [{'metricId': …, 'goal': …}], 'parameters': [...]}")
    expect("studySpec" not in spec, "this is a HyperparameterTuningJob, not its studySpec",
           "the function gives the study alone; the job (trial counts, trial job) wraps it",
           "return what you put under 'studySpec'")
    spec = parse_study_spec(spec)
    metrics = spec.get("metrics", [])
    expect(len(metrics) == 1, f"the study has {len(metrics)} metrics",
           "a study optimizes one metric", "'metrics': [{'metricId': 'auc', 'goal': 'MAXIMIZE'}]")
    metric, goal = metrics[0].get("metricId"), metrics[0].get("goal")
    expect(metric in TRAINER_METRICS, f"the metric is {metric!r}: the trainer does not report it",
           "the metric is one the trainer reports to the tuner, by its plain name",
           f"the trainer reports {', '.join(TRAINER_METRICS)}: 'metricId': 'auc'")
    expect(metric == "auc", f"the metric is {metric}, not auc",
           "the study is asked to maximize the AUC", "'metricId': 'auc'")
    expect(goal == "MAXIMIZE", f"the goal is {goal or 'not given'}",
           "is a higher AUC better, or a lower one?", "'goal': 'MAXIMIZE'")
    params = {p.get("parameterId"): p for p in spec.get("parameters", [])}
    flags_like = {n: n.lstrip("-").replace("_", "-").lower() for n in params if n}
    expect(sorted(params) == ["learning-rate", "train-batch-size"]
           or sorted(flags_like.values()) != ["learning-rate", "train-batch-size"],
           f"the parameters are {list(params)}",
           "the tuner passes each parameter as --ID=value: the id is the trainer flag's name",
           "the flag's name without its dashes: 'learning-rate', 'train-batch-size'")
    unknown = [n for n in params if not tuning_study.field(str(n))]
    expect(not unknown, f"the trainer has no flag --{unknown[0] if unknown else ''}",
           "a parameter is named after the flag it sets (python -m census.task --help lists "
           "them)", "'parameterId': 'learning-rate' and 'parameterId': 'train-batch-size'")
    expect(sorted(params) == ["learning-rate", "train-batch-size"],
           f"the parameters are {list(params)}", "the study tunes two knobs, no more",
           "tune exactly two: learning-rate and train-batch-size")
    lr = params["learning-rate"]
    expect("doubleValueSpec" in lr, "the learning rate is not a range of real numbers",
           "a learning rate is a real number between two bounds",
           "'doubleValueSpec': {'minValue': min_rate, 'maxValue': max_rate}")
    lo, hi = (lr["doubleValueSpec"].get(k, 0.0) for k in ("minValue", "maxValue"))
    expect(not (lo == max_rate and hi == min_rate), f"the learning rate goes from {lo:g} down "
           f"to {hi:g}", "which bound is the minimum?",
           "'minValue': min_rate, 'maxValue': max_rate")
    expect((lo, hi) == (min_rate, max_rate), f"the learning rate goes from {lo:g} to {hi:g}",
           "the range is given to the function", "'minValue': min_rate, 'maxValue': max_rate")
    scale = lr.get("scaleType", "no scale")
    expect(scale == "UNIT_LOG_SCALE", f"the learning rate is searched on {scale}",
           "0.0001 to 0.001 deserves as many trials as 0.01 to 0.1: chapter 8 shows the "
           "scale that spreads trials that way" if scale != "UNIT_REVERSE_LOG_SCALE" else
           "a reverse log scale crowds the trials near the top of the range",
           "'scaleType': 'UNIT_LOG_SCALE'")
    batch = params["train-batch-size"]
    expect("discreteValueSpec" in batch, "the batch size is not a list of values",
           "the batch sizes to try are given to the function: a list of numbers",
           "'discreteValueSpec': {'values': batch_sizes}")
    values = [int(v) if float(v).is_integer() else v
              for v in batch["discreteValueSpec"].get("values", [])]
    expect(sorted(values) == sorted(batch_sizes), f"the batch sizes are {values}",
           "the batch sizes are given to the function", "'values': batch_sizes")
    expect(values == sorted(values), f"the batch sizes {values} are not in increasing order",
           "Vertex AI's DiscreteValueSpec wants its values in increasing order",
           "'values': sorted(batch_sizes)")
    try:
        study = tuning_study.from_vertex(spec)
        tuning_study.check_against_trainer(study)
    except tuning_study.ConfigError as error:
        raise CheckFailed(f"census.tuning refuses it: {error}",
                          "every value the study can choose must be one the trainer's flag "
                          "accepts", "check each range against python -m census.task --help"
                          ) from None
    passed(f"a StudySpec Vertex AI reads: maximize auc over learning-rate {lo:g}…{hi:g} (log) "
           f"and train-batch-size in {values}")


def _trial_runs(study_dir, frozen):
    """(trial, its folder, its recorded TrainConfig, its last evaluation) of each finished
    trial of an Optuna study, the folder being <study_dir>/<trial.number + 1>."""
    from census import config, training
    runs = []
    for trial in frozen:
        folder = Path(study_dir, str(trial.number + 1))
        runs.append((trial, folder, config.recorded(str(folder)),
                     training.last_row_metrics(str(folder / "eval" / "metrics.csv"))))
    return runs


def check_run_study(run_study, files, study_dir, trials, train_steps):
    """run_study(files, study_dir, trials, train_steps) → an Optuna study (maximize) of
    `trials` trials, each training the course's trainer in-process for `train_steps` steps in
    <study_dir>/<trial.number + 1> on files.train and reporting the validation accuracy its run
    ended with, the learning rate sampled on a log scale."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState
    course.fresh_dir(study_dir)
    what = f"run_study(files, {course.rel(study_dir)!r}, {trials}, {train_steps})"
    with quiet.warnings_ignored(), quiet.logs("optuna", logging.WARNING):  # no INFO per trial
        study = call(run_study, files, study_dir, trials, train_steps, what=what, hint=[
            ("holds a run with other flags", (
                "every trial trained in the same folder: the second found the first's run",
                "give each trial its own job dir: f'{study_dir}/{trial.number + 1}'"))])
    expect(isinstance(study, optuna.study.Study),
           f"{what} returned a {type(study).__name__}, not an Optuna study",
           "the caller wants the study itself: its trials, its best one",
           "return the study optuna.create_study made")
    expect(study.direction == optuna.study.StudyDirection.MAXIMIZE,
           f"the study's direction is {study.direction.name}",
           "is a higher accuracy better, or a lower one?",
           "optuna.create_study(direction='maximize', …)")
    expect(len(study.trials) == trials, f"the study ran {len(study.trials)} trials, not {trials}",
           "the number of trials is an argument of your function",
           "study.optimize(objective, n_trials=trials)")
    failed = [t for t in study.trials if t.state != TrialState.COMPLETE]
    expect(not failed, f"trial {failed[0].number if failed else ''} ended "
           f"{failed[0].state.name if failed else ''}",
           "an objective returns one number, the trial's score",
           "return the run's metrics['accuracy'], a float")
    runs = _trial_runs(study_dir, study.trials)
    missing = [str(folder) for _, folder, config, _ in runs if config is None]
    expect(not missing, f"no run in {course.rel(missing[0]) if missing else ''}",
           "each trial trains in its own numbered folder inside study_dir",
           "job_dir=f'{study_dir}/{trial.number + 1}'")
    for trial, folder, config, last in runs:
        where = f"trial {trial.number} ({course.rel(folder)})"
        expect(config.train_steps == train_steps,
               f"{where} trained {config.train_steps} steps, not {train_steps}",
               "the trainer trains its default number of steps unless told otherwise",
               "TrainConfig(train_steps=train_steps, eval_every_steps=train_steps, …)")
        expect(list(config.eval_files or []) != [str(files.test)],
               f"{where} was evaluated on the test split",
               "the study chooses among trials: that is the validation split's part; the test "
               "split is kept for the final score of the one model chosen",
               "eval_files=files.validation")
        expect(list(config.train_files or []) == [str(files.train)]
               and list(config.eval_files or []) == [str(files.validation)],
               f"{where} trained on {config.train_files} and evaluated on {config.eval_files}",
               "the trials train on the training split and are compared on the validation "
               "split", "train_files=files.train, eval_files=files.validation")
        other = next((m for m in ("auc", "loss") if _same(trial.value, last.get(m))), None)
        expect(other is None, f"{where} scored {trial.value:.4f}: its validation {other}, not "
               "its accuracy", "which of the run's metrics is the study asked to maximize?",
               "return metrics['accuracy']")
        expect(_same(trial.value, last.get("accuracy")),
               f"{where} scored {trial.value:.4f}; its run ended with a validation accuracy of "
               f"{last.get('accuracy', float('nan')):.4f}",
               "the objective returns the score of the trial's own run",
               "return task.run(config)['accuracy']")
        fields = {name: name.replace("-", "_") for name in trial.params}
        differ = [f"{name}={value!r} (trained with {getattr(config, fields[name])!r})"
                  for name, value in trial.params.items()
                  if hasattr(config, fields[name]) and getattr(config, fields[name]) != value]
        expect(not differ, f"{where} suggested {', '.join(differ)}",
               "a suggested value changes nothing until the trainer is given it",
               "pass each suggested value to TrainConfig (learning_rate=…, …)")
        rates = [n for n, v in trial.params.items() if v == config.learning_rate]
        expect(rates, f"{where} trained with the learning rate {config.learning_rate}, which "
               f"no suggestion gave (its parameters: {sorted(trial.params)})",
               "the study tunes the learning rate: each trial suggests one",
               "learning_rate=trial.suggest_float('learning_rate', 1e-4, 1e-1, log=True)")
        distribution = trial.distributions[rates[0]]
        expect(isinstance(distribution, FloatDistribution) and distribution.log,
               f"{where} sampled the learning rate from {distribution}",
               "0.0001 to 0.001 deserves as many trials as 0.01 to 0.1",
               "trial.suggest_float('learning_rate', 1e-4, 1e-1, log=True)")
    best = study.best_trial
    shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in best.params.items())
    passed(f"{len(study.trials)} trials of {train_steps} steps, each in its own folder, the "
           f"learning rate on a log scale: best validation accuracy {best.value:.4f} (trial "
           f"{best.number}, in folder {best.number + 1}: {shown})")


def _same(value, reported):
    """Whether a trial's value is a metric its run reported (None: not reported)."""
    return reported is not None and abs(value - reported) < 1e-6


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
