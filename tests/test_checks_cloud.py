"""The checks of chapters 7, 8 and 9 (cluster, tuning, serving): each refuses a realistic
wrong answer with a hint that names the fix. The right answers pass in the solution
notebooks (tests/test_exercises.py); here the expensive runs are replaced by cheap wrong ones
(a trainer flag the trainer refuses, a stand-in trainer for the tuner), and chapter 9's
checks talk to a real `census serve` on the model of the `export_dir` fixture."""
import io
import json
import sys
import time
from pathlib import Path

import pytest
import requests

from census import predict, schema
from census.course import checks
from census.distribute import cluster, tiers, vertex
from census.serving import process as serving_process
from census.tuning import local as tuning_local, study as tuning_study
from conftest import REPO, fails, leads_then_tells, told

pytestmark = pytest.mark.slow  # the checks' real clusters, studies and servers

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


def fake_cluster_run(roles, status=0, chief_log=""):
    """A wrong answer's outcome without the cost of a cluster: the logs it would leave."""
    def run_small_cluster(files, job_dir, train_steps):
        logs = Path(job_dir, "logs", "cluster")
        logs.mkdir(parents=True)
        for role in roles:
            (logs / f"{role}.log").write_text(chief_log.replace("STEPS", str(train_steps)))
        return status
    return run_small_cluster


@pytest.mark.parametrize("wrong, fix", [
    (lambda files, job_dir, steps: 0, "census.distribute.cluster.run"),
    (fake_cluster_run(["chief-0"]), "workers=1"),
    (fake_cluster_run(["worker-0", "worker-1"]), "not mirrored=True"),
    (fake_cluster_run(["chief-0", "worker-0", "worker-1", "ps-0"]),
     "gives a chief, one worker and one ps"),
    (fake_cluster_run(["chief-0", "worker-0", "ps-0"], status=None), "exit status"),
    (fake_cluster_run(["chief-0", "worker-0", "ps-0"], status=124), "timeout"),
    (fake_cluster_run(["chief-0", "worker-0", "ps-0"], chief_log='"global_step": 4000\n'),
     "--train-steps"),
    (fake_cluster_run(["chief-0", "worker-0", "ps-0"], chief_log='"global_step": STEPS\n'),
     "'--job-dir', job_dir"),
])
def test_run_small_cluster_wrong_outcomes(census_files, tmp_path, wrong, fix):
    assert leads_then_tells(fails(checks.check_run_small_cluster, wrong, census_files,
                                  str(tmp_path / "job"), 10), fix)


def test_run_small_cluster_with_a_flag_the_trainer_refuses(census_files, tmp_path):
    """A real cluster (in its private network namespace) whose tasks all refuse a flag."""
    def wrong(files, job_dir, train_steps):
        flags = ["--train-file", files.train, "--job-dir", job_dir, "--train-steps",
                 str(train_steps)]
        return cluster.run(tiers.layout_for("CUSTOM", workers=1), flags, timeout=120,
                           out=io.StringIO())
    with pytest.raises(checks.CheckFailed) as error:
        checks.check_run_small_cluster(wrong, census_files, str(tmp_path / "job"), 10)
    assert "status 2" in error.value.problem and "--train-file" in error.value.problem
    assert "real one" in told(error.value)


def vertex_job_right(tier, bucket, **changes):
    job_dir = f"{bucket}/census/jobs/{tier.lower()}"
    options = dict(layout=tiers.layout_for(tier, evaluator=1), args=vertex.trainer_args(job_dir),
                   package_uris=[f"{bucket}/census/census_course-0.1.0.tar.gz"],
                   machine_types={"ps": "n1-highmem-2"}, base_output_dir=job_dir)
    options.update(changes)
    return vertex.job_spec(**options)


@pytest.mark.parametrize("changes, fix", [
    (dict(layout=tiers.TIERS["STANDARD_1"]), "evaluator=1"),
    (dict(machine_types=None), "machine_types={'ps': 'n1-highmem-2'}"),
    (dict(machine_types={"chief": "n1-highmem-2", "worker": "n1-highmem-2",
                         "ps": "n1-highmem-2"}), "change only the parameter servers' machine"),
    (dict(args=vertex.trainer_args("gs://b/census/jobs/job1")), "vertex.trainer_args("),
    (dict(args=vertex.trainer_args("gs://b/census/jobs/standard_1", mount=True)),
     "vertex.trainer_args("),
    (dict(base_output_dir=None), "base_output_dir="),
])
def test_vertex_job_wrong_answers(changes, fix):
    checks.check_vertex_job(vertex_job_right, "STANDARD_1", "gs://b")
    wrong = lambda tier, bucket: vertex_job_right(tier, bucket, **changes)  # noqa: E731
    assert leads_then_tells(fails(checks.check_vertex_job, wrong, "STANDARD_1", "gs://b"), fix)


def test_vertex_job_must_be_a_custom_job():
    wrong = lambda tier, bucket: vertex.spec_dict(vertex_job_right(tier, bucket))  # noqa: E731
    assert leads_then_tells(fails(checks.check_vertex_job, wrong, "BASIC", "gs://b"),
                            "vertex.job_spec")


# --- chapter 8 --------------------------------------------------------------------------------

def study_config(max_trials, parallel_trials, goal="MAXIMIZE", metric="auc", lr=None,
                 batch=None, nested=True):
    h = {"goal": goal, "hyperparameterMetricTag": metric, "maxTrials": max_trials,
         "maxParallelTrials": parallel_trials, "params": [
             dict({"parameterName": "learning-rate", "type": "DOUBLE", "minValue": 0.0001,
                   "maxValue": 0.1, "scaleType": "UNIT_LOG_SCALE"}, **(lr or {})),
             dict({"parameterName": "train-batch-size", "type": "INTEGER", "minValue": 32,
                   "maxValue": 512, "scaleType": "UNIT_LOG_SCALE"}, **(batch or {}))]}
    return {"trainingInput": {"hyperparameters": h}} if nested else {"hyperparameters": h}


@pytest.mark.parametrize("changes, fix", [
    (dict(nested=False), "{'trainingInput': {'hyperparameters'"),
    (dict(lr={"scaleType": "UNIT_LINEAR_SCALE"}), "UNIT_LOG_SCALE"),
    (dict(lr={"parameterName": "learning_rate"}), "name each parameter after its flag"),
    (dict(batch={"parameterName": "batch-size"}), "train-batch-size"),
    (dict(batch={"type": "DISCRETE", "discreteValues": [32, 48.5, 64]}), "whole numbers"),
    (dict(batch={"type": "DOUBLE", "minValue": 32.0, "maxValue": 512.0}), "INTEGER"),
    (dict(goal="MINIMIZE"), "MAXIMIZE"),
    (dict(metric="val_auc"), "use 'auc'"),
    (dict(lr={"minValue": 0.0}), "minValue"),
    (dict(lr={"minValue": 0.01, "maxValue": 0.05}), "minValue: 0.0001, maxValue: 0.1"),
])
def test_learning_rate_study_wrong_answers(changes, fix):
    checks.check_learning_rate_study(study_config, 8, 2)
    wrong = lambda m, p: study_config(m, p, **changes)  # noqa: E731
    assert leads_then_tells(fails(checks.check_learning_rate_study, wrong, 8, 2), fix)


def test_learning_rate_study_takes_discrete_batch_sizes(capsys):
    discrete = {"type": "DISCRETE", "discreteValues": [32, 64, 128, 256, 512]}
    checks.check_learning_rate_study(lambda m, p: study_config(m, p, batch=discrete), 8, 2)
    assert "train-batch-size 32…512" in capsys.readouterr().out


def test_learning_rate_study_trial_counts():
    wrong = lambda m, p: study_config(4, p)  # noqa: E731
    assert "maxTrials: max_trials" in told(fails(checks.check_learning_rate_study, wrong, 8, 2))


FAKE_TRAINER = '''\
"""Stands in for census.task in the tuner's subprocesses: takes the same flags, sleeps a
moment, reports the metric through the hypertune file and prints the final metrics."""
import argparse, json, os, sys, time
p = argparse.ArgumentParser(allow_abbrev=False)
for flag in ("--train-files", "--eval-files", "--job-dir", "--eval-every-steps",
             "--verbosity", "--hypertune-metric", "--first-layer-size", "--num-layers",
             "--scale-factor"):
    p.add_argument(flag)
p.add_argument("--train-steps", type=int, default=4000)
args = p.parse_args()
time.sleep(0.6)
path = os.environ["CLOUD_ML_HP_METRIC_FILE"]
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    f.write(json.dumps({args.hypertune_metric: 0.7 + float(args.scale_factor) / 10}) + "\\n")
print(json.dumps({"accuracy": 0.75, "global_step": args.train_steps}, indent=2))
'''


@pytest.fixture
def fake_trainer(tmp_path):
    path = tmp_path / "fake_trainer.py"
    path.write_text(FAKE_TRAINER)
    return [sys.executable, str(path)]


@pytest.fixture(scope="module")
def study():
    return tuning_study.read_config(REPO / "hptuning_config.yaml")


def flags(files, study_dir, steps=None, extra=()):
    out = ["--train-files", files.train, "--eval-files", files.validation, "--job-dir", study_dir]
    if steps:
        out += ["--train-steps", str(steps), "--eval-every-steps", str(steps)]
    return out + list(extra)


def test_run_study_passes_with_a_stand_in_trainer(study, census_files, tmp_path, fake_trainer,
                                                  capsys):
    def right(study, files, study_dir, trials, train_steps):
        return tuning_local.tune(study, flags(files, study_dir, train_steps), max_trials=trials,
                           parallel_trials=2, command=fake_trainer, seed=0)
    checks.check_run_study(right, study, census_files, str(tmp_path / "study"), 2, 20)
    assert "✓ 2 trials of 20 steps, two at a time: best accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, fix", [
    ("no max_trials", "max_trials=trials"),
    ("one at a time", "parallel_trials=2"),
    ("no steps", "'--train-steps', str(train_steps)"),
    ("bad flag", "python -m census.task --help"),
    ("own job dir", "'--job-dir', study_dir"),
])
def test_run_study_wrong_answers(study, census_files, tmp_path, fake_trainer, mistake, fix):
    def wrong(study, files, study_dir, trials, train_steps):
        options = dict(max_trials=trials, parallel_trials=2, command=fake_trainer, seed=0)
        trainer = flags(files, study_dir, train_steps)
        if mistake == "no max_trials":
            del options["max_trials"]
        elif mistake == "one at a time":
            del options["parallel_trials"]
        elif mistake == "no steps":
            trainer = flags(files, study_dir)
        elif mistake == "bad flag":
            trainer += ["--train-step", "20"]
        elif mistake == "own job dir":
            trainer = flags(files, str(tmp_path / "elsewhere"), train_steps)
        return tuning_local.tune(study, trainer, **options)
    # the file's counts, serial
    study = tuning_study.Study(study.spec, max_trials=4, parallel_trials=1)
    error = fails(checks.check_run_study, wrong, study, census_files, str(tmp_path / "study"),
                  2, 20)
    assert leads_then_tells(error, fix)
    if mistake == "bad flag":
        assert "trainer.log" in error.hints[0]


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
                                   "loss", "state", "seconds", "reason"]
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
