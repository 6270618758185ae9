"""The trainer follows Vertex AI's environment contract (issue 20): CLUSTER_SPEC, TF_CONFIG,
CLOUD_ML_TRIAL_ID and the AIP_* directories, as Vertex AI sets them on a replica."""
import json
import os
import re
import subprocess
import sys

import pytest

from census.config import ConfigError
from census.distribute import tf_config, vertex_env
from conftest import REPO


def cluster_spec(pool=0, index=0, trial=None, pools=1):
    """CLUSTER_SPEC as Vertex AI writes it (Prepare training code: CLUSTER_SPEC)."""
    task = {"type": f"workerpool{pool}", "index": index, **({"trial": trial} if trial else {})}
    return json.dumps({"cluster": {f"workerpool{p}": [f"cmle-training-workerpool{p}-0:2222"]
                                   for p in range(pools)},
                       "environment": "cloud", "task": task})


@pytest.mark.parametrize("pool, role", list(enumerate(vertex_env.POOL_ROLES)))
def test_cluster_spec_pools_are_tensorflows_task_types(pool, role):
    assert vertex_env.read_cluster_spec(cluster_spec(pool, 2, "7", pools=4)) == {
        "type": role, "index": 2, "trial": "7"}


def test_the_environment_of_each_replica_reads_back_as_vertex_ai_means_it():
    """What `replica_environment` writes for a chief + 2 workers + 1 ps + an evaluator, and
    for one trial of a single-replica tuning job, read back by the trainer's own readers."""
    cluster = {"chief": ["c:2222"], "worker": ["w0:2222", "w1:2222"], "ps": ["p:2222"],
               "evaluator": ["e:2222"]}
    for role, index in [("chief", 0), ("worker", 1), ("ps", 0), ("evaluator", 0)]:
        environ = vertex_env.replica_environment(cluster, role, index, base_output_dir="gs://b/j")
        assert vertex_env.read_cluster_spec(environ["CLUSTER_SPEC"]) == {
            "type": role, "index": index, "trial": None}
        assert sorted(json.loads(environ["CLUSTER_SPEC"])["cluster"]) == [
            "workerpool0", "workerpool1", "workerpool2", "workerpool3"]
        config = tf_config.read_tf_config(environ["TF_CONFIG"])
        assert (config["type"], config["index"]) == (role, index)
        assert "evaluator" not in json.loads(environ["TF_CONFIG"])["cluster"]
        assert vertex_env.output_dirs(None, environ) == vertex_env.OutputDirs(
            job_dir="gs://b/j/checkpoints", model_dir="gs://b/j/model",
            tensorboard_dir="gs://b/j/logs")
    trial = vertex_env.replica_environment({"chief": ["c:2222"]}, "chief", trial="4",
                                           base_output_dir="/base/")
    assert "TF_CONFIG" not in trial  # one replica: CLUSTER_SPEC only
    assert vertex_env.trial_id(trial) == "4" == trial["CLOUD_ML_TRIAL_ID"]
    assert trial["AIP_MODEL_DIR"] == "/base/4/model/"
    with pytest.raises(ValueError, match="role must be one of"):
        vertex_env.replica_environment(cluster, "master")


@pytest.mark.parametrize("text, words", [
    ("{", "CLUSTER_SPEC is not valid JSON"),
    ('{"cluster": {}}', "CLUSTER_SPEC must be a JSON object with a `task`"),
    ('{"task": {"type": "master", "index": 0}}', "CLUSTER_SPEC's task type 'master' is none"),
    ('{"task": {"type": "workerpool1", "index": -1}}', "CLUSTER_SPEC's task index must be"),
])
def test_a_malformed_cluster_spec_is_one_sentence(text, words):
    with pytest.raises(tf_config.TFConfigError, match="^" + words.replace("`", ".")):
        vertex_env.read_cluster_spec(text)


@pytest.mark.parametrize("environ, trial", [
    ({}, None),
    ({"CLOUD_ML_TRIAL_ID": "4"}, "4"),
    ({"CLUSTER_SPEC": cluster_spec(trial="5"), "CLOUD_ML_TRIAL_ID": "5"}, "5"),
    ({"CLUSTER_SPEC": cluster_spec()}, None),  # a replica of a plain custom job
    ({"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                               "task": {"type": "worker", "index": 0, "trial": "6"}})}, "6"),
])
def test_the_trial_id_comes_from_any_of_the_three(environ, trial):
    assert vertex_env.trial_id(environ) == trial


AIP = {"AIP_MODEL_DIR": "gs://b/job/3/model/", "AIP_CHECKPOINT_DIR": "gs://b/job/3/checkpoints/",
       "AIP_TENSORBOARD_LOG_DIR": "gs://b/job/3/logs/"}


def test_without_job_dir_the_aip_directories_are_used_as_they_are():
    """They end in <trial>/ already: nothing is appended, even in a trial."""
    dirs = vertex_env.output_dirs(None, dict(AIP, CLOUD_ML_TRIAL_ID="3"))
    assert dirs == vertex_env.OutputDirs(job_dir="gs://b/job/3/checkpoints",
                                         model_dir="gs://b/job/3/model",
                                         tensorboard_dir="gs://b/job/3/logs")
    no_logs = {k: v for k, v in AIP.items() if k != "AIP_TENSORBOARD_LOG_DIR"}
    assert vertex_env.output_dirs(None, no_logs).tensorboard_dir == "gs://b/job/3/checkpoints/logs"


def test_job_dir_wins_over_the_environment_and_takes_the_trial():
    dirs = vertex_env.output_dirs("gs://b/mine", dict(AIP, CLOUD_ML_TRIAL_ID="3"))
    assert (dirs.job_dir, dirs.model_dir, dirs.tensorboard_dir) == ("gs://b/mine/3", None, None)
    assert dirs.note == ("trial 3 of a tuning job: writing to gs://b/mine/3; --job-dir given: "
                         "writing to gs://b/mine/3, not to AIP_MODEL_DIR and AIP_CHECKPOINT_DIR "
                         "and AIP_TENSORBOARD_LOG_DIR (on Vertex AI, leave --job-dir out)")
    assert vertex_env.output_dirs("jobs/a", {}) == vertex_env.OutputDirs(job_dir="jobs/a")


@pytest.mark.parametrize("environ, missing", [
    ({}, "AIP_MODEL_DIR and AIP_CHECKPOINT_DIR"),
    ({"AIP_MODEL_DIR": "gs://b/m"}, "AIP_CHECKPOINT_DIR"),
])
def test_no_job_dir_anywhere_is_one_sentence(environ, missing):
    with pytest.raises(ConfigError, match=f"give --job-dir: no job dir, and {missing} not set"):
        vertex_env.output_dirs(None, environ)


def test_census_train_without_a_job_dir_anywhere_says_so(monkeypatch, tmp_path):
    from census import task
    from census.config import TrainConfig
    for name in vertex_env.AIP_DIRS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        task.main(config=TrainConfig(train_steps=1))
    assert exit.value.code == ("census train: give --job-dir: no job dir, and AIP_MODEL_DIR "
                               "and AIP_CHECKPOINT_DIR not set (Vertex AI sets them for a job "
                               "with a base output directory)")
    assert not any(tmp_path.iterdir())


def test_an_aip_model_dir_holding_other_files_is_refused_and_kept(monkeypatch, tmp_path):
    from census import task
    from census.config import TrainConfig
    model = tmp_path / "model"
    model.mkdir()
    (model / "notes.txt").write_text("mine")
    monkeypatch.setenv("AIP_MODEL_DIR", str(model))
    monkeypatch.setenv("AIP_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    with pytest.raises(SystemExit) as exit:
        task.main(config=TrainConfig(train_steps=1))
    assert exit.value.code == (f"census train: AIP_MODEL_DIR: {model} holds files that are not "
                               "a SavedModel's (notes.txt): the model is not written there")
    assert (model / "notes.txt").read_text() == "mine"


def trainer_flags(census_files):
    """The trials' `census train` flags, but for --job-dir: a few steps, two evaluations."""
    return ["--train-files", str(census_files.train), "--eval-files",
            str(census_files.validation), "--train-steps", "20", "--eval-every-steps", "10",
            "--eval-steps", "2", "--verbosity", "ERROR"]


def start_trainers(census_files, job_dir, environs):
    """One `census train` per environment, all at once (as Vertex starts a study's parallel
    trials); returns their CompletedProcess-like results."""
    flags = [*trainer_flags(census_files), *(["--job-dir", job_dir] if job_dir else [])]
    procs = [subprocess.Popen([sys.executable, "-m", "census", "train", *map(str, flags)],
                              cwd=REPO, env=dict(os.environ, **env), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for env in environs]
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    for _, err, code in results:
        assert code == 0, err[-3000:]
    return [(json.loads(out), err) for out, err, _ in results]


def files_under(folder, numbers=False):
    """The files under `folder`, relative; `numbers`: with every number written N (export
    versions and event files are named by the time and process id)."""
    names = (str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return sorted(re.sub(r"\d+", "N", n) if numbers else n for n in names)


@pytest.mark.slow
def test_two_trials_with_one_job_dir_share_nothing(census_files, tmp_path):
    """Two single-replica trials (no TF_CONFIG: only CLUSTER_SPEC and CLOUD_ML_TRIAL_ID)
    started at once with one --job-dir, as the issue tried: each writes to <job dir>/<trial>.
    AIP_* are set too (a job with a base output directory): --job-dir wins, said once."""
    job, base = tmp_path / "job", tmp_path / "vertex"
    environs = [{"CLUSTER_SPEC": cluster_spec(trial=trial), "CLOUD_ML_TRIAL_ID": trial,
                 **{name: str(base / trial / sub) for name, sub in zip(
                     vertex_env.AIP_DIRS, ("model", "checkpoints", "logs"))}}
                for trial in ("1", "2")]
    results = start_trainers(census_files, job, environs)
    assert sorted(os.listdir(job)) == ["1", "2"]
    one, two = files_under(job / "1", numbers=True), files_under(job / "2", numbers=True)
    assert one == two  # the same files, each trial its own
    for trial, (metrics, err) in zip("12", results):
        assert metrics["exports"][0].startswith(str(job / trial / "export" / "census"))
        assert f"census train: trial {trial} of a tuning job: writing to {job / trial}; " \
               "--job-dir given" in err
        assert err.count("--job-dir given") == 1
        rows = (job / trial / "eval" / "metrics.csv").read_text().splitlines()
        assert len(rows) == 3  # a header and its own two evaluations, not the other's
    assert not base.exists()  # the environment's folders were left alone


@pytest.mark.slow
def test_each_aip_directory_gets_its_part(census_files, tmp_path, monkeypatch, capsys):
    """Without --job-dir, two trials' AIP_* directories (<base>/<trial>/model/ …): the
    SavedModel flat in AIP_MODEL_DIR with the 2017 signature, checkpoints, backup, evaluations
    and the run record under AIP_CHECKPOINT_DIR, TensorBoard logs in AIP_TENSORBOARD_LOG_DIR,
    and nothing anywhere else. The same command again finds nothing left to train, and keeps
    the model."""
    import tensorflow as tf

    from census import signature
    base = tmp_path / "vertex"
    environs = [{"CLUSTER_SPEC": cluster_spec(trial=trial), "CLOUD_ML_TRIAL_ID": trial,
                 "AIP_MODEL_DIR": f"{base / trial / 'model'}/",
                 "AIP_CHECKPOINT_DIR": f"{base / trial / 'checkpoints'}/",
                 "AIP_TENSORBOARD_LOG_DIR": f"{base / trial / 'logs'}/"} for trial in ("1", "2")]
    results = start_trainers(census_files, None, environs)
    assert sorted(os.listdir(base)) == ["1", "2"]
    for trial, (metrics, _) in zip("12", results):
        model, checkpoints, logs = (base / trial / d for d in ("model", "checkpoints", "logs"))
        assert sorted(os.listdir(base / trial)) == ["checkpoints", "logs", "model"]
        assert metrics["exports"] == [str(model)]
        assert (model / "saved_model.pb").is_file()
        assert sorted(os.listdir(checkpoints)) == ["backup", "checkpoints", "eval",
                                                  "run_config.json"]
        assert any(p.name.startswith("events.out.tfevents") for p in logs.rglob("*"))
        serving = tf.saved_model.load(str(model)).signatures["predict"]
        assert sorted(serving.structured_outputs) == sorted(signature.OUTPUT_KEYS)
    def saved():  # the first trial's checkpoints and model (a rerun logs to TensorBoard)
        return files_under(base / "1" / "checkpoints") + files_under(base / "1" / "model")
    before = saved()
    from census import task  # the first trial's command again, in this process (no start-up)
    for name, value in environs[0].items():
        monkeypatch.setenv(name, value)
    again = task.main(trainer_flags(census_files))
    assert "nothing left to train" in capsys.readouterr().err
    assert again["exports"] == [str(base / "1" / "model")]
    assert saved() == before
