"""The checks of chapters 7, 8 and 9 (cluster, tuning, serving): each refuses a realistic
wrong answer with a hint that names the fix. The right answers pass in the solution
notebooks (tests/test_exercises.py) and here; the worker pools go through the real SDK to a
local Vertex recorder, the Optuna studies train the real trainer a step or two, and chapter
9's checks talk to a real `census serve` on the model of the `export_dir` fixture."""
import json
import time
from pathlib import Path

import pytest
import requests

from census import predict, schema
from census.course import checks
from census.course.checks import cluster as cluster_checks
from census.distribute import tiers
from census.distribute.tf_config import read_tf_config
from census.distribute.vertex_env import read_cluster_spec
from census.serving import process as serving_process
from census.tuning import study as tuning_study
from conftest import REPO, fails, leads_then_tells

pytestmark = pytest.mark.slow  # the checks' real SDK calls, trainings and servers

PORTS = [2222, 2223, 2224, 2225]


# --- chapter 7 --------------------------------------------------------------------------------

def tf_config_right(layout, ports, task_type, index):
    return json.dumps({"cluster": layout.cluster(ports),
                       "task": {"type": task_type, "index": index}})


def test_tf_config_stub_is_not_answered():
    def stub(layout, ports, task_type, index):
        raise NotImplementedError()
    with pytest.raises(checks.NotAnswered):
        checks.check_tf_config(stub, tiers.layout_for(), PORTS)


@pytest.mark.parametrize("wrong, layout, fix", [
    (lambda l, p, t, i: {"cluster": l.cluster(p), "task": {"type": t, "index": i}},
     tiers.layout_for(), "json.dumps"),
    (lambda l, p, t, i: str({"cluster": l.cluster(p), "task": {"type": t, "index": i}}),
     tiers.layout_for(), "not str(config)"),
    (lambda l, p, t, i: json.dumps({"cluster": {"chief": [], "ps": [], **l.cluster(p)},
                                    "task": {"type": t, "index": i}}),
     tiers.layout_for(mirrored=True), "a 'ps' key"),
    (lambda l, p, t, i: json.dumps({"cluster": l.cluster(p[::-1]),
                                    "task": {"type": t, "index": i}}),
     tiers.layout_for(), "zip(layout.tasks(), ports)"),
    (lambda l, p, t, i: json.dumps({"cluster": {k: [a.split(":")[1] for a in v]
                                                for k, v in l.cluster(p).items()},
                                    "task": {"type": t, "index": i}}),
     tiers.layout_for(), "f'localhost:{port}'"),
    (lambda l, p, t, i: json.dumps({"cluster": l.cluster(p), "task": {"type": t, "index": str(i)}}),
     tiers.layout_for(), "as an int"),
])
def test_tf_config_wrong_answers(wrong, layout, fix):
    checks.check_tf_config(tf_config_right, layout, PORTS[:len(layout.tasks())])
    assert leads_then_tells(fails(checks.check_tf_config, wrong, layout,
                                  PORTS[:len(layout.tasks())]), fix)


def replica_role_right(environ):
    """The answer the exercise asks for, written as a learner would."""
    roles = ("chief", "worker", "ps", "evaluator")
    task = json.loads(environ.get("CLUSTER_SPEC") or "{}").get("task", {})
    pool = int(task.get("type", "workerpool0").removeprefix("workerpool"))
    trial = task.get("trial") or environ.get("CLOUD_ML_TRIAL_ID")
    return roles[pool], int(task.get("index", 0)), str(trial) if trial else None


def role_with(changes):
    """replica_role_right with one mistake: changes(environ, (type, index, trial)) → answer."""
    return lambda environ: changes(environ, replica_role_right(environ))


def only_tf_config(environ):
    task = json.loads(environ.get("TF_CONFIG") or "{}").get("task", {})
    return task.get("type", "chief"), int(task.get("index", 0)), task.get("trial")


def pool_off_by_one(environ):  # workerpool1 taken for the chief
    task = json.loads(environ.get("CLUSTER_SPEC") or "{}").get("task", {})
    pool = int(task.get("type", "workerpool0").removeprefix("workerpool"))
    return (("chief", "worker", "ps", "evaluator")[pool - 1], int(task.get("index", 0)),
            replica_role_right(environ)[2])


def test_replica_role_right(capsys):
    checks.check_replica_role(replica_role_right)
    assert "✓ replica_role reads all 9 replicas" in capsys.readouterr().out


def test_replica_role_environments_are_vertex_s():
    """Where Vertex AI sets both variables, TF_CONFIG says what CLUSTER_SPEC says; TF_CONFIG
    only when the job has more than one replica; on Vertex AI, CLOUD_ML_TRIAL_ID exactly in a
    trial."""
    both = 0
    for label, environ in cluster_checks.REPLICAS:
        if "TF_CONFIG" in environ:
            both += 1
            spec, config = (read_cluster_spec(environ["CLUSTER_SPEC"]),
                            read_tf_config(environ["TF_CONFIG"]))
            assert (config["type"], config["index"], config["trial"]) == \
                (spec["type"], spec["index"], spec["trial"]), label
            assert "evaluator" not in json.loads(environ["TF_CONFIG"])["cluster"]
        elif "CLUSTER_SPEC" in environ:
            assert len(json.loads(environ["CLUSTER_SPEC"])["cluster"]["workerpool0"]) == 1
        if "CLUSTER_SPEC" in environ:
            trial = read_cluster_spec(environ["CLUSTER_SPEC"])["trial"]
            assert environ.get("CLOUD_ML_TRIAL_ID") == trial, label
    assert both == 5


def test_replica_role_stub_is_not_answered():
    def stub(environ):
        raise NotImplementedError()
    with pytest.raises(checks.NotAnswered):
        checks.check_replica_role(stub)


@pytest.mark.parametrize("wrong, fix", [
    (only_tf_config, "CLUSTER_SPEC is set on every replica"),
    (pool_off_by_one, "workerpool0 is the chief"),
    (role_with(lambda e, r: (r[0], str(r[1]), r[2])), "int(task['index'])"),
    (role_with(lambda e, r: (r[0], r[1], None)), "task.get('trial')"),
    (role_with(lambda e, r: (r[0], r[1], r[2] if "CLUSTER_SPEC" in e else None)),
     "environ.get('CLOUD_ML_TRIAL_ID')"),
    (role_with(lambda e, r: (r[0], r[1], int(r[2]) if r[2] else None)), "str(trial)"),
    (role_with(lambda e, r: (json.loads(e["CLUSTER_SPEC"])["task"]["type"]
                             if "CLUSTER_SPEC" in e else "chief", *r[1:])),
     "workerpool0 is the chief, 1 the workers"),
    (lambda environ: json.loads(environ["CLUSTER_SPEC"]), "without one: ('chief', 0, None)"),
    (role_with(lambda e, r: list(r[:2])), "return task_type, index, trial"),
])
def test_replica_role_wrong_answers(wrong, fix):
    assert leads_then_tells(fails(checks.check_replica_role, wrong), fix)


IMAGE = "us-central1-docker.pkg.dev/my-project/census/trainer:0.1.0"
ARGS = ["--train-steps", "5000"]


def pools_right(tier, image_uri, args, pool=None, counts=None, empty=lambda n: {}):
    """The answer to exercise 7.3, with knobs: `pool(n, image_uri, args)` builds a pool of n
    replicas, `counts(layout)` lists the counts, `empty(n)` stands for an empty pool."""
    layout = tiers.TIERS[tier]
    counts = counts(layout) if counts else [layout.chief, layout.workers, layout.ps, 1]
    pool = pool or (lambda n, image, flags: {
        "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": n,
        "container_spec": {"image_uri": image, "command": ["python", "-m", "census.task"],
                           "args": list(flags)}})
    return [pool(n, image_uri, args) if n else empty(n) for n in counts]


def with_container(**changes):
    def pool(n, image, flags):
        container = dict({"image_uri": image, "command": ["python", "-m", "census.task"],
                          "args": list(flags)}, **changes)
        return {"machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": n,
                "container_spec": container}
    return pool


def test_worker_pool_specs_right(capsys):
    checks.check_worker_pool_specs(pools_right, "STANDARD_1", IMAGE, ARGS)
    checks.check_worker_pool_specs(pools_right, "BASIC", IMAGE, ARGS)
    out = capsys.readouterr().out
    assert "pools [1, 4, 3, 1] (9 machines)" in out and "pools [1, 0, 0, 1]" in out
    assert "Creating CustomJob" not in out  # the SDK's log lines stay out


def test_worker_pool_specs_leave_the_sdk_as_it_was():
    from google.cloud.aiplatform import initializer
    before = dict(vars(initializer.global_config))
    checks.check_worker_pool_specs(pools_right, "BASIC", IMAGE, ARGS)
    assert dict(vars(initializer.global_config)) == before


@pytest.mark.parametrize("tier, wrong, fix", [
    ("STANDARD_1", lambda t, i, a: {"pools": pools_right(t, i, a)}, "return [chief_pool"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, i, a)[:3], "add a fourth pool"),
    ("BASIC", lambda t, i, a: [p for p in pools_right(t, i, a) if p],
     "keep an empty pool's place with {}"),
    ("BASIC", lambda t, i, a: pools_right(t, i, a, empty=lambda n: {
        "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 0}),
     "an empty pool is {}"),
    ("STANDARD_1", lambda t, i, a: pools_right(
        t, i, a, counts=lambda l: [l.chief, l.workers + l.chief, l.ps, 1]), "TIERS['STANDARD_1']"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, i, a, pool=lambda n, image, flags: {
        "machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": n,
        "python_package_spec": {"executor_image_uri": image, "python_module": "census.task",
                                "package_uris": ["gs://b/census.tar.gz"], "args": flags}}),
     "'container_spec': {'image_uri': image_uri"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, i, a, pool=lambda n, image, flags: {
        "machineSpec": {"machineType": "n1-standard-4"}, "replicaCount": n}),
     "machine_spec, replica_count, container_spec"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, i, a, pool=lambda n, image, flags: {
        "machine_spec": "n1-standard-4", "replica_count": n}),
     "'machine_spec': {'machine_type': 'n1-standard-4'}"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, i, a, pool=lambda n, image, flags: {
        "replica_count": n, "container_spec": {"image_uri": image, "args": flags}}),
     "'machine_spec': {'machine_type': 'n1-standard-4'}"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, "gcr.io/someone-else/trainer:1", a),
     "'image_uri': image_uri"),
    ("STANDARD_1", lambda t, i, a: pools_right(
        t, i, a, pool=with_container(command="python -m census.task")),
     "'command': ['python', '-m', 'census.task']"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, i, a, pool=with_container(command=[])),
     "'command': ['python', '-m', 'census.task']"),
    ("STANDARD_1", lambda t, i, a: pools_right(t, i, a, pool=with_container(args=" ".join(a))),
     "'args': list(args)"),
])
def test_worker_pool_specs_wrong_answers(tier, wrong, fix):
    assert leads_then_tells(fails(checks.check_worker_pool_specs, wrong, tier, IMAGE, ARGS), fix)


# --- chapter 8 --------------------------------------------------------------------------------

def spec_right(min_rate, max_rate, batch_sizes, lr=None, batch=None, metric=None,
               top=None):
    """The answer to exercise 8.1, each part replaceable (`top`: what wraps the spec)."""
    spec = {"metrics": [dict({"metricId": "auc", "goal": "MAXIMIZE"}, **(metric or {}))],
            "parameters": [
                dict({"parameterId": "learning-rate",
                      "doubleValueSpec": {"minValue": min_rate, "maxValue": max_rate},
                      "scaleType": "UNIT_LOG_SCALE"}, **(lr or {})),
                dict({"parameterId": "train-batch-size",
                      "discreteValueSpec": {"values": sorted(batch_sizes)}}, **(batch or {}))]}
    return top(spec) if top else spec


def test_study_spec_right(capsys):
    checks.check_study_spec(spec_right, 0.0001, 0.1, [32, 64, 128, 256, 512])
    snake = lambda lo, hi, sizes: {  # noqa: E731  (Python's spelling reads the same)
        "metrics": [{"metric_id": "auc", "goal": "MAXIMIZE"}],
        "parameters": [{"parameter_id": "learning-rate", "scale_type": "UNIT_LOG_SCALE",
                        "double_value_spec": {"min_value": lo, "max_value": hi}},
                       {"parameter_id": "train-batch-size",
                        "discrete_value_spec": {"values": sorted(sizes)}}]}
    checks.check_study_spec(snake, 0.001, 0.3, [512, 64, 128])
    out = capsys.readouterr().out
    assert "learning-rate 0.0001…0.1 (log) and train-batch-size in [32, 64, 128, 256, 512]" in out
    assert "learning-rate 0.001…0.3 (log) and train-batch-size in [64, 128, 512]" in out


@pytest.mark.parametrize("changes, fix", [
    (dict(top=lambda s: {"trainingInput": {"hyperparameters": s}}), "return {'metrics'"),
    (dict(top=lambda s: {"studySpec": s, "maxTrialCount": 8}), "under 'studySpec'"),
    (dict(metric={"goal": "MINIMIZE"}), "'goal': 'MAXIMIZE'"),
    (dict(metric={"goal": "maximize"}), "names in capitals"),
    (dict(top=lambda s: dict(s, metric="auc")), "names in capitals"),
    (dict(metric={"metricId": "val_auc"}), "'metricId': 'auc'"),
    (dict(metric={"metricId": "accuracy"}), "'metricId': 'auc'"),
    (dict(lr={"scaleType": "UNIT_LINEAR_SCALE"}), "'scaleType': 'UNIT_LOG_SCALE'"),
    (dict(lr={"scaleType": "UNIT_REVERSE_LOG_SCALE"}), "'scaleType': 'UNIT_LOG_SCALE'"),
    (dict(lr={"doubleValueSpec": {"minValue": 0.1, "maxValue": 0.0001}}),
     "'minValue': min_rate, 'maxValue': max_rate"),
    (dict(lr={"doubleValueSpec": {"minValue": 0.001, "maxValue": 0.1}}),
     "'minValue': min_rate, 'maxValue': max_rate"),
    (dict(lr={"parameterId": "learning_rate"}), "without its dashes"),
    (dict(lr={"parameterId": "--learning-rate"}), "without its dashes"),
    (dict(batch={"parameterId": "batch-size"}), "'parameterId': 'train-batch-size'"),
    (dict(batch={"discreteValueSpec": None, "integerValueSpec": {"minValue": 32,
                                                                 "maxValue": 512}}),
     "'discreteValueSpec': {'values': batch_sizes}"),
    (dict(batch={"discreteValueSpec": {"values": [512, 256, 128, 64, 32]}}),
     "sorted(batch_sizes)"),
    (dict(batch={"discreteValueSpec": {"values": [32, 64]}}), "'values': batch_sizes"),
])
def test_study_spec_wrong_answers(changes, fix):
    def wrong(min_rate, max_rate, batch_sizes):
        spec = spec_right(min_rate, max_rate, batch_sizes, **changes)
        for p in spec.get("parameters", []):
            if p.get("discreteValueSpec", 0) is None:
                del p["discreteValueSpec"]
        return spec
    assert leads_then_tells(fails(checks.check_study_spec, wrong, 0.0001, 0.1,
                                  [32, 64, 128, 256, 512]), fix)


def test_study_spec_refused_by_the_trainer():
    error = fails(checks.check_study_spec, spec_right, 0.0001, 0.1, [0, 32, 64])  # no rows
    assert "census.tuning refuses it" in error.problem and "train-batch-size" in error.problem


def optuna_learner(eval_on="validation"):
    """The answer to exercise 8.2 (`eval_on`: the split each trial is evaluated on)."""
    import optuna

    from census import task
    from census.config import TrainConfig

    def run_study(files, study_dir, trials, train_steps):
        def objective(trial):
            config = TrainConfig(
                job_dir=f"{study_dir}/{trial.number + 1}",
                train_files=files.train, eval_files=getattr(files, eval_on),
                train_steps=train_steps, eval_every_steps=train_steps,
                learning_rate=trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
                first_layer_size=trial.suggest_int("first_layer_size", 50, 200),
                verbosity="ERROR")
            return task.run(config)["accuracy"]
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=0))
        study.optimize(objective, n_trials=trials)
        return study
    return run_study


@pytest.fixture(scope="module")
def few_rows(census_files, tmp_path_factory):
    """The census files with the first 300 rows of the validation and test splits: each trial
    evaluates on the whole validation file, and a wrong one on the whole test file."""
    import dataclasses
    folder = tmp_path_factory.mktemp("few-rows")
    short = {}
    for split in ("validation", "test"):
        lines = Path(getattr(census_files, split)).read_text().splitlines(keepends=True)
        short[split] = str(folder / f"{split}.csv")
        Path(short[split]).write_text("".join(lines[:300]))
    return dataclasses.replace(census_files, **short)


def test_run_study_right(few_rows, tmp_path, capsys):
    checks.check_run_study(optuna_learner(), few_rows, str(tmp_path / "study"), 2, 2)
    assert "✓ 2 trials of 2 steps, each in its own folder" in capsys.readouterr().out
    folders = sorted(p.name for p in (tmp_path / "study").iterdir() if p.is_dir())
    assert folders == ["1", "2"]  # the trials', numbered from 1


def untrained(direction="maximize", trials=None, value=0.5):
    """A wrong answer that trains nothing: a study of cheap trials."""
    import optuna

    def run_study(files, study_dir, n, train_steps):
        study = optuna.create_study(direction=direction)
        study.optimize(lambda trial: value, n_trials=n if trials is None else trials)
        return study
    return run_study


@pytest.mark.parametrize("wrong, trials, fix", [
    (lambda files, study_dir, trials, steps: None, 1, "return the study"),
    (untrained(direction="minimize"), 1, "direction='maximize'"),
    (untrained(trials=1), 2, "n_trials=trials"),
    (untrained(value=None), 1, "metrics['accuracy'], a float"),
    (untrained(), 1, "job_dir=f'{study_dir}/{trial.number + 1}'"),
    (optuna_learner(eval_on="test"), 1, "eval_files=files.validation"),
])
def test_run_study_wrong_answers(few_rows, tmp_path, wrong, trials, fix):
    assert leads_then_tells(fails(checks.check_run_study, wrong, few_rows,
                                  str(tmp_path / "study"), trials, 2), fix)


def copied(trained_job, metric="accuracy", log=True, rate=0.001):
    """A wrong answer that trains nothing: its trial's folder is a copy of the session's
    trained job (a real run of the trainer, default flags), its learning rate `rate`."""
    import shutil

    import optuna

    from census import training
    job_dir, _ = trained_job

    def run_study(files, study_dir, trials, train_steps):
        def objective(trial):
            trial.suggest_float("learning_rate", 1e-4, 1e-1, log=log)
            shutil.copytree(job_dir, f"{study_dir}/{trial.number + 1}")
            return training.last_row_metrics(f"{job_dir}/eval/metrics.csv")[metric]
        study = optuna.create_study(direction="maximize")
        study.enqueue_trial({"learning_rate": rate})
        study.optimize(objective, n_trials=trials)
        return study
    return run_study


def test_run_study_every_trial_in_one_folder(census_files, trained_job, tmp_path):
    """The first trial leaves its run in study_dir (a copy of the session's trained job, as
    training would), and the trainer refuses the second, which has other flags."""
    import shutil

    import optuna

    from census import task
    from census.config import TrainConfig

    def wrong(files, study_dir, trials, train_steps):
        def objective(trial):
            rate = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
            if trial.number == 0:
                shutil.copytree(trained_job[0], study_dir, dirs_exist_ok=True)
                return 0.5
            return task.run(TrainConfig(job_dir=study_dir, train_files=files.train,
                                        eval_files=files.validation, train_steps=train_steps,
                                        learning_rate=rate, verbosity="ERROR"))["accuracy"]
        study = optuna.create_study(direction="maximize")
        study.optimize(objective, n_trials=trials)
        return study
    error = fails(checks.check_run_study, wrong, census_files, str(tmp_path / "study"), 2, 2)
    assert "holds a run with other flags" in error.problem
    assert leads_then_tells(error, "{trial.number + 1}")


@pytest.mark.parametrize("mistake, fix", [
    (dict(metric="auc"), "return metrics['accuracy']"),
    (dict(log=False), "log=True"),
    (dict(rate=0.05), "learning_rate="),
])
def test_run_study_wrong_answers_after_a_run(census_files, trained_job, tmp_path, mistake, fix):
    from conftest import SMOKE_STEPS  # the trained job's steps
    assert leads_then_tells(fails(checks.check_run_study, copied(trained_job, **mistake),
                                  census_files, str(tmp_path / "study"), 1, SMOKE_STEPS), fix)


@pytest.fixture(scope="module")
def study():
    return tuning_study.read_config(REPO / "hptuning_config.yaml")


def final_right(study_dir, study, test_file, choose_on=None, score_on=None, goal=None):
    """The right answer to exercise 8.3, with knobs for each mistake."""
    import pandas as pd

    from census import export
    table = pd.read_csv(f"{study_dir}/trials.csv")
    done = table[table["state"] == "SUCCEEDED"]
    newest = {int(t): export.list_versions(f"{study_dir}/{t}/export/census")[-1]
              for t in done["trial"]}
    if choose_on:  # every trial scored on the given file, the best of those kept
        scores = {t: predict.score(path, [choose_on]) for t, path in newest.items()}
        sign = 1 if study.goal == "MAXIMIZE" else -1
        trial = max(scores, key=lambda t: sign * scores[t][study.metric])
        return trial, scores[trial]
    metric = done.set_index("trial")[study.metric]
    trial = int(metric.idxmax() if (goal or study.goal) == "MAXIMIZE" else metric.idxmin())
    return trial, predict.score(newest[trial], [score_on or test_file])


@pytest.fixture(scope="module")
def minimize(study):
    return tuning_study.Study(dict(study.spec, metrics=[{"metricId": "loss",
                                                          "goal": "MINIMIZE"}]))


def test_final_score_stub_is_not_answered(minimize, census_files, tmp_path):
    def stub(study_dir, study, test_file):
        raise NotImplementedError()
    with pytest.raises(checks.NotAnswered):
        checks.check_final_score(stub, minimize, census_files, str(tmp_path / "s"), 0)


def test_final_score_right(minimize, census_files, tmp_path, capsys):
    import pandas as pd
    checks.check_final_score(final_right, minimize, census_files, str(tmp_path / "s"), 0)
    out = capsys.readouterr().out
    assert out.startswith("✓ trial 2 has the best validation loss") and "16,281 rows" in out
    table = pd.read_csv(tmp_path / "s" / "trials.csv")  # as census tune writes it
    assert list(table.columns) == ["trial", "first-layer-size", "num-layers", "scale-factor",
                                   "loss", "proposed", "state", "seconds", "reason"]
    assert list(table["state"]) == ["SUCCEEDED", "SUCCEEDED", "FAILED", "SUCCEEDED"]


@pytest.mark.parametrize("wrong, fix", [
    (lambda d, s, f: final_right(d, s, f, choose_on=f), "score that trial's export alone"),
    (lambda d, s, f: final_right(d, s, f)[1], "return trial, scores"),
    (lambda d, s, f: final_right(d, s, f, goal="MAXIMIZE"), "read study.goal"),
    (lambda d, s, f: (final_right(d, s, f)[0] - 1, final_right(d, s, f)[1]), "'trial' column"),
])
def test_final_score_wrong_answers(minimize, census_files, tmp_path, wrong, fix):
    error = fails(checks.check_final_score, wrong, minimize, census_files, str(tmp_path / "s"), 0)
    assert leads_then_tells(error, fix)


def test_final_score_on_the_validation_split(minimize, census_files, tmp_path):
    wrong = lambda d, s, f: final_right(d, s, f, score_on=census_files.validation)  # noqa: E731
    error = fails(checks.check_final_score, wrong, minimize, census_files, str(tmp_path / "s"), 0)
    assert "the 3,256 rows of the validation split" in error.problem
    assert "took no part in any choice" in error.hints[0]


# --- chapter 9 --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(export_dir):
    with serving_process.BackgroundServer(export_dir.parent, port=0) as running:
        yield running.url


@pytest.fixture(scope="module")
def people():
    return predict.read_instances(REPO / "test.json")


def retrying(statuses=(429, 503), errors=(requests.ConnectionError,), on_error=None,
             whole=False, wait=0.05, give_up=None):
    """predict_with_retries with knobs for each mistake."""
    def predict_with_retries(url, instances, attempts=3):
        problem = "none"
        for attempt in range(attempts):
            if attempt:
                time.sleep(wait * 2 ** (attempt - 1))
            try:
                reply = requests.post(url + "/v1/models/census:predict",
                                      json={"instances": instances}, timeout=10)
            except errors as error:
                problem = str(error)
                continue
            if reply.status_code == 200:
                return reply.json() if whole else reply.json()["predictions"]
            problem = f"HTTP {reply.status_code}: {reply.json()['error']}"
            if reply.status_code not in statuses:
                raise (on_error or predict.PredictError)(problem)
        if give_up == "return":
            return None
        raise predict.PredictError(problem)
    return predict_with_retries


def test_predict_with_retries_passes_when_right(server, people, capsys):
    checks.check_predict_with_retries(retrying(), server, people)
    assert "✓ predict_with_retries: 2 predictions" in capsys.readouterr().out


def test_predict_with_retries_stub_is_not_answered(server, people):
    def stub(url, instances, attempts=3):
        raise NotImplementedError()
    with pytest.raises(checks.NotAnswered):
        checks.check_predict_with_retries(stub, server, people)


def no_retry(url, instances, attempts=3):
    reply = requests.post(url + "/v1/models/census:predict", json={"instances": instances},
                          timeout=10)
    reply.raise_for_status()
    return reply.json()["predictions"]


def forever(url, instances, attempts=3):
    while True:
        reply = requests.post(url + "/v1/models/census:predict", json={"instances": instances},
                              timeout=10)
        if reply.status_code == 200:
            return reply.json()["predictions"]
        time.sleep(0.05)


@pytest.mark.parametrize("wrong, fix", [
    (retrying(whole=True), "return reply.json()['predictions']"),
    (no_retry, "wait a little and try again"),
    (retrying(statuses=(503,)), "retry on 429"),
    (retrying(give_up="return"), "raise predict.PredictError"),
    (retrying(statuses=(400, 429, 503)), "raise at once otherwise"),
    (retrying(on_error=RuntimeError), "raise predict.PredictError(...)"),
    (retrying(on_error=lambda message: predict.PredictError("the server said no")),
     "reply.json()['error']"),
    (retrying(errors=()), "requests.ConnectionError"),
])
def test_predict_with_retries_wrong_answers(server, people, wrong, fix):
    assert leads_then_tells(fails(checks.check_predict_with_retries, wrong, server, people), fix)


@pytest.mark.parametrize("wrong", [forever, retrying(wait=1.5)])
def test_predict_with_retries_that_takes_too_long(server, people, monkeypatch, wrong):
    from census.course.checks import serving as serving_checks
    monkeypatch.setattr(serving_checks, "TIME_LIMIT", 2.5)
    error = fails(checks.check_predict_with_retries, wrong, server, people)
    assert leads_then_tells(error, "stop after `attempts` tries, keep the waits short")


def predicting(columns=schema.INPUT_COLUMNS, convert=list, index=True, flat=True, column=1):
    def predict_frame(url, frame):
        inputs = {c: convert(frame[c]) for c in columns}
        reply = requests.post(url + "/v1/models/census:predict", json={"inputs": inputs},
                              timeout=30).json()
        outputs = reply["outputs"]
        return __import__("pandas").DataFrame({
            "classes": [c[0] if flat else c for c in outputs["classes"]],
            "logistic": [p[column] for p in outputs["probabilities"]]},
            index=frame.index if index else None)
    return predict_frame


@pytest.fixture(scope="module")
def test_frame(census_files):
    from census import data
    return data.load_frame(census_files.test).sample(20, random_state=0)


def test_predict_frame_passes_when_right(server, test_frame, capsys):
    checks.check_predict_frame(predicting(convert=lambda s: s.tolist()), server, test_frame)
    assert "✓ 20 people in one columnar request" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, fix", [
    (predicting(columns=schema.CSV_COLUMNS, convert=lambda s: s.tolist()),
     "send only the model's 13 inputs"),
    (predicting(convert=lambda s: list(s.to_numpy())), ".tolist()"),
    (predicting(convert=lambda s: s.tolist(), index=False), "index=frame.index"),
    (predicting(convert=lambda s: s.tolist(), flat=False), "first item: [c[0] for c in"),
    (predicting(convert=lambda s: s.tolist(), column=0), "not the first"),
])
def test_predict_frame_wrong_answers(server, test_frame, wrong, fix):
    assert leads_then_tells(fails(checks.check_predict_frame, wrong, server, test_frame), fix)


def retiring(guard=True, give=True, delete=True, undeploy=True):
    """retire with knobs for each mistake: no default guard, the share not given to the
    default version, no delete from the registry, no undeploy."""
    def retire(endpoint, model, version_id):
        aliases = {v.version_id: list(v.version_aliases)
                   for v in model.versioning_registry.list_versions()}
        if guard and "default" in aliases[version_id]:
            raise ValueError("the default version")
        default = next(v for v, names in aliases.items() if "default" in names)
        deployed = {d.model_version_id: d.id for d in endpoint.list_models()}
        split = dict(endpoint.traffic_split)
        share = split.pop(deployed[version_id], 0)
        if give:
            split[deployed[default]] = split.get(deployed[default], 0) + share
        if undeploy:
            endpoint.undeploy(deployed[version_id], traffic_split=split)
        if delete:
            model.versioning_registry.delete_version(version_id)
    return retire


def test_retire_passes_when_right(capsys):
    from google.cloud.aiplatform import initializer
    before = dict(vars(initializer.global_config))
    checks.check_retire(retiring())
    assert "✓ version 2 retired" in capsys.readouterr().out
    assert dict(vars(initializer.global_config)) == before  # the SDK left as it was


@pytest.mark.parametrize("wrong, fix", [
    (retiring(guard=False), "raise ValueError when 'default'"),
    (retiring(give=False), "undeploy(id, traffic_split={…: 100})"),
    (retiring(delete=False), "delete_version(version_id)"),
    (retiring(undeploy=False), "undeploy it from the endpoint first"),
])
def test_retire_wrong_answers(wrong, fix):
    assert leads_then_tells(fails(checks.check_retire, wrong), fix)
