import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from census import export, model, task
from census.distribute import tf_config
from conftest import REPO, SMOKE_STEPS

pytestmark = pytest.mark.slow  # training runs, one killed and resumed


def test_train_and_evaluate_writes_the_2017_job_dir(trained_job):
    job_dir, metrics = trained_job
    assert metrics["global_step"] == SMOKE_STEPS
    assert {"loss", "accuracy", "auc"} <= set(metrics)
    assert (job_dir / "checkpoints" / "checkpoint").is_file()
    assert list((job_dir / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((job_dir / "logs" / "validation").glob("events.out.tfevents.*"))
    rows = list(csv.DictReader(open(job_dir / "eval" / "metrics.csv")))
    assert len(rows) == 2 and float(rows[-1]["val_auc"]) == pytest.approx(metrics["auc"])
    [export] = metrics["exports"]
    assert Path(export).parent == job_dir / "export" / "census"
    assert (Path(export) / "saved_model.pb").is_file()


def test_a_short_run_already_learns(trained_job):
    # The full default run reaches ~0.86 / ~0.918 (bench/train_quality.py); 300 steps of
    # batch 128 must clear the majority-class accuracy (0.764) and a modest AUC.
    _, metrics = trained_job
    assert metrics["accuracy"] > 0.82 and metrics["auc"] > 0.88


def test_exporters(trained_job, tmp_path):
    m = model.build_model()
    latest = export.LatestExporter("latest", exports_to_keep=2)
    paths = [latest.after_eval(m, str(tmp_path), {}) for _ in range(3)]
    assert sorted(os.listdir(tmp_path / "export" / "latest")) == [Path(p).name for p in paths[1:]]

    best = export.BestExporter("best", metric="auc")
    results = [best.after_eval(m, str(tmp_path), {"auc": auc}) for auc in (0.8, 0.7, 0.9)]
    assert results[0] and results[1] is None and results[2]
    assert len(os.listdir(tmp_path / "export" / "best")) == 2

    assert export.FinalExporter().after_eval(m, str(tmp_path), {}) is None


@pytest.mark.parametrize("config, kind", [
    ({}, "local"),
    ({"cluster": {"chief": ["a:1"]}}, "local"),  # a cluster of one: 2017's BASIC tier
    ({"cluster": {"chief": ["a:1"], "evaluator": ["e:1"]}}, "local"),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}}, "multi_worker"),
    ({"cluster": {"worker": ["a:1", "b:1"]}}, "multi_worker"),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:1"], "ps": ["c:1"]}}, "parameter_server"),
])
def test_strategy_kind_follows_tf_config(config, kind):
    assert tf_config.strategy_kind(config.get("cluster", {})) == kind


@pytest.mark.parametrize("task, chief", [
    (None, True), ({"type": "chief", "index": 0}, True), ({"type": "master", "index": 0}, True),
    ({"type": "worker", "index": 0}, False), ({"type": "ps", "index": 0}, False)])
def test_only_the_chief_is_chief(monkeypatch, task, chief):
    config = ({"cluster": {"chief": ["a:1"], "worker": ["b:1"], "ps": ["c:1"]}, "task": task}
              if task else {})
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert tf_config.is_chief() is chief


# The trainer, killed (SIGKILL: nothing of it runs after) as its third interval begins, once
# the callbacks of the second interval's end, the backup's included, have all run. Killed from
# inside, the kill lands at the same step whatever the machine's load.
KILLED_AT_THE_THIRD_INTERVAL = """
import os, signal, sys
import tf_keras as keras
from census import task

class Kill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)

fit = keras.Model.fit
keras.Model.fit = lambda self, *a, callbacks=(), **k: fit(self, *a, **k,
                                                        callbacks=[*callbacks, Kill()])
task.main(sys.argv[1:])
"""


def test_killed_job_resumes_from_its_last_evaluation(census_files, tmp_path, capsys):
    job_dir = tmp_path / "job"
    flags = ["--train-files", census_files.train, "--eval-files", census_files.validation,
             "--job-dir", str(job_dir), "--train-steps", "600", "--eval-every-steps", "100"]
    first = subprocess.run([sys.executable, "-c", KILLED_AT_THE_THIRD_INTERVAL, *flags],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    assert re.findall(r"^Epoch (\d+)/6", first.stdout, re.M) == ["1", "2"], first.stdout

    task.main(flags)  # the same command again, in this process (no second start-up)
    stdout, stderr = capsys.readouterr()
    epochs = re.findall(r"^Epoch (\d+)/6", stdout, re.M)
    assert epochs and int(epochs[0]) == 3, stdout  # not back at epoch 1
    assert "train_and_evaluate: resuming at step 200 of 600\n" in stderr
    metrics = json.loads(stdout[stdout.index("{"):])
    assert metrics["global_step"] == 600
    rows = list(csv.DictReader(open(job_dir / "eval" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(6))  # the killed run's rows kept
