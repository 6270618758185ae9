"""Hyperparameter tuning: the 2017 config and Vertex's studySpec, the scales, the local Optuna
tuner (failing, hanging and interrupted trials, resume, real trainer trials) and the
HyperparameterTuningJob the SDK sends (to a local recorder)."""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials

from census import cli
from census.course.vertex_recorder import VertexRecorder
from census.distribute import tiers, vertex
from census.tuning import local as tuning_local, study as tuning_study, vertex as tuning_vertex
from conftest import REPO

pytestmark = pytest.mark.slow  # real studies of trials

CONFIG = REPO / "hptuning_config.yaml"
JOB_DIR = "gs://my-bucket/census/hptuning"
IMAGE = "us-central1-docker.pkg.dev/my-project/census/trainer:0.1.0"


# --- configs ----------------------------------------------------------------------------------

def test_the_2017_study_reads_and_converts_both_ways():
    study = tuning_study.read_config(CONFIG)
    assert (study.metric, study.goal, study.max_trials, study.parallel_trials) == \
        ("accuracy", "MAXIMIZE", 4, 2)
    by_id = {p["parameterId"]: p for p in study.parameters}
    assert by_id["first-layer-size"]["integerValueSpec"] == {"minValue": 50, "maxValue": 500}
    assert by_id["num-layers"]["integerValueSpec"] == {"minValue": 1, "maxValue": 15}
    assert by_id["scale-factor"] == {"parameterId": "scale-factor", "scaleType":
                                     "UNIT_REVERSE_LOG_SCALE",
                                     "doubleValueSpec": {"minValue": 0.1, "maxValue": 1.0}}
    # legacy → Vertex → legacy gives the file back
    assert tuning_study.to_legacy(study) == yaml.safe_load(CONFIG.read_text())
    vertex = tuning_study.to_vertex(study)
    assert tuning_study.from_vertex(vertex) == study
    # … and the Vertex form parses into the API's own types, and back from its JSON
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format
    pb = aiplatform_v1.HyperparameterTuningJob.pb()()
    json_format.ParseDict(vertex, pb)
    assert pb.study_spec.parameters[2].scale_type == \
        aiplatform_v1.StudySpec.ParameterSpec.ScaleType.UNIT_REVERSE_LOG_SCALE
    assert tuning_study.from_vertex(json_format.MessageToDict(pb)) == study  # int64s as strings


def test_a_vertex_yaml_is_a_config_too(tmp_path):
    study = tuning_study.read_config(CONFIG)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tuning_study.to_vertex(study)))
    assert tuning_study.read_config(path) == study
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainingInput:\n  hyperparameters:\n    goal: UP\n"
                   "    hyperparameterMetricTag: accuracy\n    params: []\n")
    with pytest.raises(tuning_study.ConfigError):
        tuning_study.read_config(bad)


# --- scales -----------------------------------------------------------------------------------

def samples(parameter, n=400):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [tuning_study.suggest(study.ask(), parameter) for _ in range(n)]


def test_reverse_log_samples_the_reflected_value_on_a_log_scale():
    import optuna
    spec = {"parameterId": "scale-factor", "scaleType": "UNIT_REVERSE_LOG_SCALE",
            "doubleValueSpec": {"minValue": 0.1, "maxValue": 1.0}}
    # x = min + max - r, with r log-uniform: r = min gives the top of the range
    reflected = "scale-factor~reflected"
    assert tuning_study.suggest(optuna.trial.FixedTrial({reflected: 0.1}), spec) == 1.0
    assert tuning_study.suggest(optuna.trial.FixedTrial({reflected: 1.0}), spec) == 0.1
    reverse = samples(spec)
    log = samples(dict(spec, scaleType="UNIT_LOG_SCALE"))
    linear = samples(dict(spec, scaleType="UNIT_LINEAR_SCALE"))
    assert all(0.1 <= x <= 1.0 for x in reverse + log + linear)
    # medians: log-uniform sqrt(0.1) ≈ 0.32; reverse log 1.1 - 0.32 ≈ 0.78; linear 0.55
    assert 0.26 < statistics.median(log) < 0.38
    assert 0.72 < statistics.median(reverse) < 0.84
    assert 0.48 < statistics.median(linear) < 0.62
    integers = samples({"parameterId": "num-layers", "scaleType": "UNIT_REVERSE_LOG_SCALE",
                        "integerValueSpec": {"minValue": 1, "maxValue": 15}})
    assert all(isinstance(x, int) and 1 <= x <= 15 for x in integers)
    assert statistics.median(integers) > 8


def test_discrete_whole_numbers_reach_an_integer_flag_as_integers():
    import optuna
    spec = {"parameterId": "train-batch-size", "discreteValueSpec": {"values": [64.0, 128.0]}}
    value = tuning_study.suggest(optuna.trial.FixedTrial({"train-batch-size": 128}), spec)
    assert tuning_study.trial_flags({"train-batch-size": value}) == ["--train-batch-size=128"]
    halves = {"parameterId": "dropout", "discreteValueSpec": {"values": [0.0, 0.5]}}
    assert tuning_study.suggest(optuna.trial.FixedTrial({"dropout": 0.5}), halves) == 0.5


def test_trial_flags_are_vertex_style():
    assert tuning_study.trial_flags({"first-layer-size": 120, "scale-factor": 0.5}) == \
        ["--first-layer-size=120", "--scale-factor=0.5"]
    from census.config import TrainConfig
    config = TrainConfig.from_args(["--job-dir", "j", "--first-layer-size=120",
                                    "--scale-factor=0.5", "--hypertune-metric=accuracy"])
    assert (config.first_layer_size, config.scale_factor, config.hypertune_metric) == \
        (120, 0.5, "accuracy")


# --- the local tuner: mechanics with a stand-in trainer -----------------------------------------

STANDIN = textwrap.dedent("""\
    # A stand-in for census.task: the same flag style and metric report, no TensorFlow.
    import argparse, os, sys, tempfile, time
    import hypertune
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("--job-dir", required=True)
    p.add_argument("--hypertune-metric", required=True)
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--n", type=int, required=True)
    args = p.parse_args()
    trial = os.environ["CLOUD_ML_TRIAL_ID"]
    tempfile.mkstemp(prefix="standin-")  # as the trainer's cleaned copies of raw files
    job_dir = os.path.join(args.job_dir, trial)  # the trial's folder, as on Vertex AI
    open(os.path.join(job_dir, "pid"), "w").write(str(os.getpid()))
    if trial in os.environ.get("STANDIN_FAIL", "").split(","):
        sys.exit("failing on purpose")
    if trial in os.environ.get("STANDIN_HANG", "").split(","):
        time.sleep(300)
    waits, _, release = os.environ.get("STANDIN_WAIT", "").partition(":")
    deadline = time.monotonic() + 60
    while trial == waits and not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the test says so
    hypertune.HyperTune().report_hyperparameter_tuning_metric(
        args.hypertune_metric, 1 - (args.x - 0.7) ** 2 + args.n / 100, 10)
""")

STUDY = {"trainingInput": {"hyperparameters": {
    "goal": "MAXIMIZE", "hyperparameterMetricTag": "score", "maxTrials": 4,
    "maxParallelTrials": 2, "params": [
        {"parameterName": "x", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1.0,
         "scaleType": "UNIT_REVERSE_LOG_SCALE"},
        {"parameterName": "n", "type": "INTEGER", "minValue": 1, "maxValue": 5,
         "scaleType": "UNIT_LINEAR_SCALE"}]}}}


@pytest.fixture
def standin(tmp_path, monkeypatch):
    (tmp_path / "standin.py").write_text(STANDIN)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(STUDY))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), str(REPO)]))
    return config


def tune_standin(config, job_dir, **kwargs):
    return tuning_local.tune(config, ["--job-dir", str(job_dir)], command=[sys.executable, "-m",
                       "standin"], seed=0, **kwargs)


def test_failing_and_hanging_trials_are_failed_and_the_study_goes_on(standin, tmp_path,
                                                                     monkeypatch, capsys):
    monkeypatch.setenv("STANDIN_FAIL", "2")
    monkeypatch.setenv("STANDIN_HANG", "3")
    job = tmp_path / "job"
    start = time.monotonic()
    table = tune_standin(standin, job, trial_timeout=4)
    assert time.monotonic() - start < 30
    assert sorted(table["trial"]) == [1, 2, 3, 4]
    states = dict(zip(table["trial"], table["state"]))
    assert states == {1: "SUCCEEDED", 2: "FAILED", 3: "FAILED", 4: "SUCCEEDED"}
    reasons = dict(zip(table["trial"], table["reason"]))
    assert reasons[2] == "exit status 1: failing on purpose"  # the trainer's own last line
    assert reasons[3].startswith("timeout after 4")
    assert "failing on purpose" in (job / "2" / "trainer.log").read_text()
    # the hanging trial's process is gone
    pid = int((job / "3" / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert list(table.columns) == ["trial", "x", "n", "score", "proposed", "state", "seconds",
                                   "reason"]
    # TPE draws at random until startup_trials(4) = 2 trials have finished, then models them
    proposed = dict(zip(table["trial"], table["proposed"]))
    assert proposed[1] == proposed[2] == "random", proposed
    assert all(re.fullmatch(r"random|TPE, [2-3] done", p) for p in proposed.values()), proposed
    assert all(0.1 <= x <= 1.0 for x in table["x"])
    saved = __import__("pandas").read_csv(job / "trials.csv")
    assert list(saved["trial"]) == list(table["trial"])
    best = json.loads((job / "best.json").read_text())
    assert best["value"] == table["score"].max()
    out = capsys.readouterr().out
    assert out.count("[tune] trial ") == 4 and "FAILED (timeout after 4 s)" in out
    # each trial got its own dir, metric file and Vertex-style flags
    metric = json.loads((job / "1" / "hypertune" / "output.metrics").read_text())
    assert metric["trial"] == "1" and "score" in metric


def test_rerunning_resumes_the_study(standin, tmp_path, capsys):
    job = tmp_path / "job"
    first = tune_standin(standin, job, max_trials=2)
    assert list(first["trial"]) == [1, 2]
    again = tune_standin(standin, job, max_trials=2)  # the same command: nothing left to do
    assert list(again["trial"]) == [1, 2]
    more = tune_standin(standin, job, max_trials=3, parallel_trials=1)
    assert list(more["trial"]) == [1, 2, 3]
    assert "2 trials done, 1 to run" in capsys.readouterr().out
    # Another study into its folder is refused, naming what differs: its trials are not ours.
    with pytest.raises(tuning_study.ConfigError) as error:
        tuning_local.tune(standin, ["--job-dir", str(job), "--n", "2"], seed=0,
                          command=[sys.executable, "-m", "standin"])
    assert str(error.value) == (
        f"{job} holds a study run with other settings (the trainer flags were '', now "
        "'--n 2'): rerun with them to resume it, or give another --job-dir")
    other = yaml.safe_load(standin.read_text())
    other["trainingInput"]["hyperparameters"]["params"][1]["maxValue"] = 9
    standin.write_text(yaml.safe_dump(other))
    with pytest.raises(tuning_study.ConfigError, match="the study config differs in its "
                       "parameters\\): rerun"):
        tune_standin(standin, job)
    assert len(tuning_local.load_study(job).trials) == 3  # nothing ran


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_trials_and_the_same_command_resumes(standin, tmp_path, signum):
    """Ctrl-C, or a launcher's SIGTERM: the running trials are stopped (none is left running,
    nor its temporary files), and the same command resumes."""
    job = tmp_path / "job"
    command = [sys.executable, "-m", "census", "tune", "--config", str(standin), "--module",
               "standin", "--seed", "0", "--", "--job-dir", str(job)]
    tmp = tmp_path / "tmp"  # the tuner's TMPDIR, ours alone
    tmp.mkdir()
    env = dict(os.environ, STANDIN_HANG="1,2", TMPDIR=str(tmp))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 30
    while not ((job / "1" / "pid").is_file() and (job / "2" / "pid").is_file()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    time.sleep(0.3)
    proc.send_signal(signum)
    out = proc.communicate(timeout=20)[0]
    assert proc.returncode == 130, out
    assert "interrupted" in out
    for trial in ("1", "2"):
        with pytest.raises(ProcessLookupError):
            os.kill(int((job / trial / "pid").read_text()), 0)
    assert list(tmp.iterdir()) == []  # the killed trials' temporary files are gone too
    done = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 trials done, 4 to run" in done.stdout
    table = __import__("pandas").read_csv(job / "trials.csv")
    assert list(table["trial"]) == [1, 2, 3, 4, 5, 6]
    assert list(table["reason"].fillna(""))[:2] == ["interrupted", "interrupted"]
    assert list(table["state"])[2:] == ["SUCCEEDED"] * 4


def test_two_tuners_on_one_study_cooperate(standin, tmp_path):
    """The report: a second `census tune` on a running study marked the first one's running
    trial FAILED ("interrupted"), and the first crashed (optuna's UpdateFinishedTrialError).
    Now they run the study together, as Optuna's distributed workers do: its maxTrials in all,
    every trial run and finished by its own process."""
    job, release = tmp_path / "job", tmp_path / "release"
    command = [sys.executable, "-m", "census", "tune", "--config", str(standin), "--module",
               "standin", "--parallel-trials", "1", "--", "--job-dir", str(job)]
    env = dict(os.environ, STANDIN_WAIT=f"1:{release}")  # trial 1 runs until we release it
    procs = []

    def wait_for(path):
        deadline = time.monotonic() + 60
        while not path.is_file():
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                [p.communicate()[0] for p in procs if p.poll() is not None]
            time.sleep(0.1)
    try:
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
        wait_for(job / "1" / "pid")  # the first tuner's trial 1 is RUNNING
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
        wait_for(job / "2" / "pid")  # the second's first trial runs beside it
        release.touch()
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "Traceback" not in "".join(outputs) and "interrupted" not in "".join(outputs)
    from optuna.trial import TrialState
    ran = [t for t in tuning_local.load_study(job).get_trials()
           if t.state != TrialState.PRUNED]  # a trial asked for past maxTrials never runs
    assert [(t.number + 1, t.state) for t in ran] == [(n, TrialState.COMPLETE)
                                                      for n in (1, 2, 3, 4)]
    printed = [{int(n) for n in re.findall(r"\[tune\] trial (\d+) SUCCEEDED", out)}
               for out in outputs]
    assert 1 in printed[0] and 2 in printed[1] and printed[0] | printed[1] == {1, 2, 3, 4}
    assert not printed[0] & printed[1]  # each trial reported by the process that ran it


# --- the local tuner with the real trainer --------------------------------------------------------

def test_real_trials_two_in_parallel(census_files, tmp_path):
    job = tmp_path / "job"
    done = subprocess.run(
        [sys.executable, "-m", "census", "tune", "--config", str(CONFIG), "--max-trials", "2",
         "--parallel-trials", "2", "--seed", "1", "--", "--train-files", census_files.train,
         "--eval-files", census_files.validation, "--job-dir", str(job), "--train-steps", "100",
         "--eval-every-steps", "100", "--verbosity", "ERROR"],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = __import__("pandas").read_csv(job / "trials.csv")
    assert list(table["state"]) == ["SUCCEEDED", "SUCCEEDED"], done.stdout
    assert table["accuracy"].between(0.7, 1).all()
    assert table["first-layer-size"].between(50, 500).all()
    assert table["num-layers"].between(1, 15).all()
    assert table["scale-factor"].between(0.1, 1.0).all()
    best = json.loads((job / "best.json").read_text())
    assert best["value"] == table["accuracy"].max()
    assert (Path(best["export"]) / "saved_model.pb").is_file()
    for trial in ("1", "2"):
        metric = json.loads((job / trial / "hypertune" / "output.metrics").read_text())
        assert metric["global_step"] == "100" and float(metric["accuracy"]) > 0.7
        assert (job / trial / "export" / "census").is_dir()
    assert done.stdout.count("[tune] trial ") == 2


def test_when_no_trial_succeeds_census_tune_says_so_and_fails(standin, tmp_path):
    job = tmp_path / "job"
    done = subprocess.run([sys.executable, "-m", "census", "tune", "--config", str(standin),
                           "--module", "standin", "--max-trials", "2", "--", "--job-dir",
                           str(job)], env=dict(os.environ, STANDIN_FAIL="1,2"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("census tune: no trial succeeded")
    assert done.stdout.count("FAILED (exit status 1: failing on purpose)") == 2


@pytest.mark.parametrize("change, words", [
    (lambda h: h.update(hyperparameterMetricTag="epoch_acc"),
     "metric 'epoch_acc' is not one the trainer reports (it reports accuracy, auc, loss)"),
    (lambda h: h["params"][0].update(parameterName="first_layer_size"),
     "parameter 'first_layer_size' is not a trainer flag that can be tuned"),
    (lambda h: h["params"][0].update(minValue=0),
     "parameter 'first-layer-size': the trainer refuses 0 (--first-layer-size must "
     "be a whole number of at least 1, got 0)"),
    (lambda h: h["params"][2].update(maxValue=2.0),
     "parameter 'scale-factor': the trainer refuses 2.0"),
    (lambda h: h["params"].append({"parameterName": "train-batch-size", "type": "DOUBLE",
                                   "minValue": 32, "maxValue": 256}),
     "parameter 'train-batch-size': the trainer refuses 32.0"),
    (lambda h: h["params"].append({"parameterName": "job-dir", "type": "CATEGORICAL",
                                   "categoricalValues": ["a", "b"]}),
     "parameter 'job-dir' is not a trainer flag that can be tuned"),
], ids=["metric", "name", "range", "double range", "type", "not tunable"])
def test_a_study_the_trainer_cannot_run_is_refused_before_any_trial(tmp_path, change, words):
    """The report: a metric the trainer does not report failed every trial after training,
    with only `exit status 1`, and `census tune` exited 0. Now nothing starts."""
    config = yaml.safe_load(CONFIG.read_text())
    change(config["trainingInput"]["hyperparameters"])
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    job = tmp_path / "job"
    with pytest.raises(SystemExit) as exit:  # in this process: the command line's one sentence
        cli.main(["tune", "--config", str(path), "--", "--job-dir", str(job)])
    assert isinstance(exit.value.code, str) and "\n" not in exit.value.code  # status 1, a line
    assert exit.value.code.startswith(f"census tune: {words}")
    assert not job.exists()


def test_the_trainer_flags_of_a_study_are_checked_before_any_trial(tmp_path):
    job = tmp_path / "job"
    done = subprocess.run([sys.executable, "-m", "census", "tune", "--config", str(CONFIG), "--",
                           "--job-dir", str(job), "--train-steps", "0"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == (
        "census tune: the trainer flags after `--`: argument --train-steps: must be a whole "
        "number of at least 1, got '0'")
    assert not job.exists()


def test_census_tune_is_the_command():
    done = subprocess.run([sys.executable, "-m", "census", "tune", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: census tune --config FILE" in done.stdout


# --- Vertex AI ----------------------------------------------------------------------------------

def vertex_job():
    study = tuning_study.read_config(CONFIG)
    trial = vertex.job_spec(tiers.TIERS["BASIC"],
                           tuning_vertex.trial_args(study, vertex.trainer_args()), IMAGE,
                           base_output_dir=JOB_DIR)
    return study, tuning_vertex.hp_job(study, trial, display_name="census-hptuning")


def test_the_job_yaml_is_what_gcloud_reads(tmp_path):
    study, job = vertex_job()
    path = tuning_vertex.write_yaml(job, tmp_path / "hptuning_job.yaml")
    spec = yaml.safe_load(open(path))
    assert spec["studySpec"] == tuning_study.to_vertex(study)["studySpec"]
    assert (spec["maxTrialCount"], spec["parallelTrialCount"]) == (4, 2)
    container = spec["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    assert container["imageUri"] == IMAGE
    assert container["args"][-1] == "--hypertune-metric=accuracy"
    assert tuning_vertex.gcloud_command(job, "us-central1", path).startswith(
        "gcloud ai hp-tuning-jobs create --region=us-central1 --display-name=census-hptuning "
        f"--config={path}")


def test_the_sdk_sends_the_tuning_job_to_vertex(capsys, fresh_aiplatform):
    study, job = vertex_job()
    assert tuning_vertex.submit(job, study, project=None) is None
    assert "gcloud ai hp-tuning-jobs create" in capsys.readouterr().out
    with VertexRecorder() as recorder:
        submitted = tuning_vertex.submit(job, study, project="P", location="us-central1",
                                  staging_bucket="gs://my-bucket",
                                  credentials=AnonymousCredentials(),
                                  api_endpoint=recorder.endpoint, api_transport="rest", wait=True)
    [create] = recorder.find("POST")
    assert create["path"] == "/v1/projects/P/locations/us-central1/hyperparameterTuningJobs"
    # The REST transport sends enums as numbers: read the body back through the API's type.
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format
    pb = aiplatform_v1.HyperparameterTuningJob.pb()()
    json_format.ParseDict(create["body"], pb)
    body = vertex.to_dict(pb)
    assert body["displayName"] == "census-hptuning"
    assert (int(body["maxTrialCount"]), int(body["parallelTrialCount"])) == (4, 2)
    assert body["studySpec"]["metrics"] == [{"metricId": "accuracy", "goal": "MAXIMIZE"}]
    sent = {p["parameterId"]: p for p in body["studySpec"]["parameters"]}
    assert sent["scale-factor"]["scaleType"] == "UNIT_REVERSE_LOG_SCALE"
    assert sent["scale-factor"]["doubleValueSpec"] == {"minValue": 0.1, "maxValue": 1.0}
    assert sent["first-layer-size"]["scaleType"] == "UNIT_LINEAR_SCALE"
    assert {k: int(v) for k, v in sent["first-layer-size"]["integerValueSpec"].items()} == \
        {"minValue": 50, "maxValue": 500}
    assert {k: int(v) for k, v in sent["num-layers"]["integerValueSpec"].items()} == \
        {"minValue": 1, "maxValue": 15}
    pool = body["trialJobSpec"]["workerPoolSpecs"][0]
    assert pool["containerSpec"] == {
        "imageUri": IMAGE, "command": ["python", "-m", "census.task"],
        "args": vertex.trainer_args() + ["--hypertune-metric=accuracy"]}
    assert body["trialJobSpec"]["baseOutputDirectory"]["outputUriPrefix"] == JOB_DIR
    assert submitted.resource_name == "projects/P/locations/us-central1/hyperparameterTuningJobs/1"
    assert "JOB_STATE_SUCCEEDED" in capsys.readouterr().out


@pytest.mark.parametrize("change, words", [
    (lambda h: h.update(algorithm="HILL_CLIMBING"),
     "algorithm 'HILL_CLIMBING' is none of ALGORITHM_UNSPECIFIED, GRID_SEARCH, RANDOM_SEARCH"),
    (lambda h: h.update(maxFailedTrials=-1), "maxFailedTrials must be at least 0"),
    (lambda h: h.update(maxTrials=0), "maxTrials and maxParallelTrials must be at least 1"),
])
def test_a_study_config_is_checked_when_read(tmp_path, change, words):
    config = yaml.safe_load(CONFIG.read_text())
    change(config["trainingInput"]["hyperparameters"])
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(tuning_study.ConfigError, match=words):
        tuning_study.read_config(path)


def test_trial_metric_plot_marks_the_baseline():
    import pandas as pd

    from census import plots
    results = pd.DataFrame({"trial": [1, 2, 3], "first-layer-size": [50, 200, 400],
                            "num-layers": [1, 6, 12], "accuracy": [0.85, 0.7592, None]})
    fig = plots.trial_metric(results, ["first-layer-size", "num-layers"], baseline=0.7592,
                             baseline_label="always <=50K")
    assert len(fig.axes) == 3
    # FAILED trials are left out; each trial one colour, named in the figure's legend
    assert [sum(line.get_marker() == "o" for line in ax.lines) for ax in fig.axes[1:]] == [2, 2]
    assert all(ax.lines[-1].get_ydata()[0] == 0.7592 for ax in fig.axes)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"always <=50K", "trial 1", "trial 2"} <= set(legend) and "trial 3" not in legend
    assert plots.unreadable(fig) == []

