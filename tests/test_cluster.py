"""The local cluster: tiers as data, and real clusters of the unchanged trainer in a private
network namespace (PSS: chief + 2 workers + 1 ps; MultiWorkerMirrored: 2 workers)."""
import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from census import cli, export, processes
from census.distribute import cli as cluster_cli, namespace, tiers
from conftest import REPO, SMOKE_STEPS

pytestmark = pytest.mark.slow  # real clusters of processes


def test_tiers_are_data_mapped_to_processes_and_vertex_pools():
    standard = tiers.TIERS["STANDARD_1"]
    assert (standard.chief, standard.workers, standard.ps) == (1, 4, 3)
    assert len(standard.tasks()) == 8 and standard.vertex_pools() == [1, 4, 3]
    assert tiers.TIERS["BASIC"].tasks() == [("chief", 0)]
    assert tiers.TIERS["BASIC"].vertex_pools() == [1]
    assert tiers.TIERS["BASIC"].strategy == "local"
    assert tiers.TIERS["BASIC_GPU"].gpus == 1

    scaled = tiers.layout_for("STANDARD_1", workers=2, ps=1)
    assert scaled.tasks() == [("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0)]
    assert scaled == tiers.layout_for() == tiers.LOCAL_DEFAULT
    assert scaled.strategy == "parameter_server"
    assert scaled.cluster([1, 2, 3, 4]) == {"chief": ["localhost:1"], "ps": ["localhost:4"],
                                            "worker": ["localhost:2", "localhost:3"]}
    assert tiers.layout_for(evaluator=1).vertex_pools() == [1, 2, 1, 1]

    mirrored = tiers.layout_for(mirrored=True)
    assert mirrored.tasks() == [("worker", 0), ("worker", 1)]
    assert mirrored.strategy == "multi_worker" and mirrored.vertex_pools() == [1, 1]
    with pytest.raises(ValueError):
        tiers.layout_for(mirrored=True, ps=1)
    with pytest.raises(ValueError):
        tiers.layout_for("STANDARD_2")


@pytest.mark.parametrize("netns,why", [
    ((("false",), ()), "(exit status 1)"),
    ((("/nonexistent/unshare", "--net"), ()), "(No such file or directory)"),
    (None, "(CENSUS_NETNS=off)")])
def test_refuses_to_run_without_a_private_network(tmp_path, capsys, monkeypatch, netns, why):
    if netns is None:  # the switch that rehearses a machine where no namespace can be made
        monkeypatch.setenv(namespace.NETNS_SWITCH, "off")
    with pytest.raises(SystemExit) as exit:
        args = cli.parser().parse_args(["cluster", "--", "--job-dir", str(tmp_path)])
        cluster_cli.run(args, netns_commands=netns)
    message = str(exit.value.code)
    assert message.startswith("census cluster: cannot create a loopback-only network namespace")
    assert why in message and "--allow-host-network" in message
    assert "open on all its interfaces" in message
    if netns is None:
        assert not namespace.private_network_possible()
    assert "started" not in capsys.readouterr().out  # no task was started
    assert os.listdir(tmp_path / "logs" / "cluster") == []



def _unshare_refused(*args, **kwargs):
    raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), "unshare")


@pytest.mark.parametrize("case", ["no capabilities", "unshare refused", "root refused"])
def test_a_refused_namespace_says_why_and_what_to_do(tmp_path, capsys, monkeypatch, case):
    """Ubuntu 24.04+ (AppArmor) gives an ordinary user's user namespace no capabilities, so
    setting up the network fails with EPERM, or refuses `unshare` itself: one sentence names
    the restriction and the ways out. A refusal to root (no `--user`) gets no sysctl advice."""
    user = ("--user", "--preserve-credentials")
    netns = {  # a real EPERM: a user namespace has no say over this machine's loopback
        "no capabilities": (("unshare", "--user", "--map-root-user"), user),
        "unshare refused": (("unshare", "--user", "--map-root-user", "--net"), user),
        # a real EPERM: `unshare --net` without privileges
        "root refused": (("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                          "unshare", "--net"), ("--net",))}[case]
    if case == "unshare refused":
        monkeypatch.setattr(namespace.subprocess, "Popen", _unshare_refused)
    with pytest.raises(SystemExit) as exit:
        args = cli.parser().parse_args(["cluster", "--", "--job-dir", str(tmp_path)])
        cluster_cli.run(args, netns_commands=netns)
    message = str(exit.value.code)
    assert message.startswith("census cluster: cannot create a loopback-only network namespace")
    assert "Operation not permitted" in message and "Traceback" not in message
    assert "\n" not in message and "--allow-host-network" in message
    advice = f"`sudo sysctl -w {namespace.RESTRICT_SYSCTL}=0`"
    if case == "root refused":
        assert advice not in message and "Ubuntu" not in message
    else:
        assert message.endswith(".") and not re.search(r"[.;]\s", message)  # one sentence
        assert f"Ubuntu 24.04 and later restrict user namespaces by default, " \
               f"{namespace.RESTRICT_SYSCTL}=1" in message
        assert advice in message and "run as root" in message
        assert "open on all this machine's network interfaces" in message
    assert "started" not in capsys.readouterr().out  # no task was started
    assert os.listdir(tmp_path / "logs" / "cluster") == []


def run_cluster(job_dir, census_files, cluster_flags=(), trainer_flags=(), kill=None,
                timeout=240, env=None):
    """Run `python -m census.cluster` for real (`env`: more environment variables).
    `kill=(role, line prefix)`: SIGKILL that task when the output shows the line. Returns
    (status, output, {role: pid})."""
    command = [sys.executable, "-m", "census", "cluster", "--timeout", str(timeout - 20),
               *cluster_flags, "--", "--train-files", census_files.train,
               "--eval-files", census_files.validation, "--job-dir", str(job_dir), *trainer_flags]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, env={**os.environ,
                            **(env or {})}, stderr=subprocess.STDOUT, text=True)
    lines, pids, deadline = [], {}, time.monotonic() + timeout
    try:
        for line in proc.stdout:
            lines.append(line)
            if m := re.match(r"\[cluster\] started (\S+) \(pid (\d+)\)", line):
                pids[m[1]] = int(m[2])
            if kill and line.startswith(kill[1]):
                os.kill(pids[kill[0]], signal.SIGKILL)
                kill = None
            if time.monotonic() > deadline:
                break
        status = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return status, "".join(lines), pids


def chief_metrics(output, role="chief-0"):
    prefix = f"[{role}] "
    text = "".join(line[len(prefix):] for line in output.splitlines(keepends=True)
                   if line.startswith(prefix))
    return json.JSONDecoder().raw_decode(text[text.rindex("\n{") + 1:])[0]


def assert_all_stopped(pids):
    time.sleep(0.5)
    alive = [role for role, pid in pids.items() if os.path.exists(f"/proc/{pid}")]
    assert not alive, f"still running: {alive}"


def signature(export_dir):
    import tensorflow as tf
    loaded = tf.saved_model.load(str(export_dir))
    result = {}
    for key in export.SIGNATURE_KEYS:
        fn = loaded.signatures[key]
        inputs = {k: v.dtype.name for k, v in fn.structured_input_signature[1].items()}
        outputs = {k: v.dtype.name for k, v in fn.structured_outputs.items()}
        result[key] = inputs, outputs
    return result


EVALUATED = (["--evaluator"], ["--train-steps", str(SMOKE_STEPS), "--eval-every-steps", "150"])
"""The cluster flags and trainer flags of `evaluated_cluster`: the default layout (chief + 2
workers + 1 ps) and an evaluator, with the flags of the single-process `trained_job`."""


@pytest.fixture(scope="module")
def evaluated_cluster(census_files, tmp_path_factory):
    """One real PSS cluster run with an evaluator task, read by the tests below (the evaluator
    only reads the chief's checkpoints: the chief trains as without it). Its TMPDIR is a
    folder of its own, so that a test can see that nothing was left in it. Returns
    (job_dir, tmp, status, output, pids)."""
    root = tmp_path_factory.mktemp("evaluated-cluster")
    job_dir, tmp = root / "job", root / "tmp"
    tmp.mkdir()
    status, output, pids = run_cluster(job_dir, census_files, *EVALUATED,
                                       env={"TMPDIR": str(tmp)})
    return job_dir, tmp, status, output, pids


def test_pss_cluster_matches_a_single_process_run(trained_job, evaluated_cluster):
    # The same flags as the single-process `trained_job`, on chief + 2 workers + 1 ps (beside
    # an evaluator, which only reads their checkpoints).
    single_dir, single = trained_job
    job_dir, _, status, output, pids = evaluated_cluster
    assert status == 0, output[-3000:]
    assert set(pids) == {"chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"}
    assert_all_stopped(pids)
    assert re.search(r"^\[worker-1\] ", output, re.M)  # streamed, prefixed by role
    assert sorted(os.listdir(job_dir / "logs" / "cluster")) == [
        "chief-0.log", "evaluator-0.log", "ps-0.log", "worker-0.log", "worker-1.log"]

    metrics = chief_metrics(output)
    assert metrics["global_step"] == single["global_step"] == SMOKE_STEPS
    assert metrics["accuracy"] > 0.80 and single["accuracy"] > 0.80
    assert abs(metrics["accuracy"] - single["accuracy"]) < 0.04
    [exported] = metrics["exports"]
    assert signature(exported) == signature(single["exports"][-1])
    assert len(signature(exported)["serving_default"][0]) == 13


def test_killing_a_worker_does_not_lose_the_job(census_files, tmp_path):
    # The coordinator reschedules the dead worker's steps on the surviving one.
    status, output, pids = run_cluster(
        tmp_path / "job", census_files,
        trainer_flags=["--train-steps", "100", "--eval-every-steps", "50"],
        kill=("worker-1", "[chief-0] Epoch 2/"))
    assert status == 0, output[-3000:]
    assert re.search(r"all tasks stopped \(.*worker-1 -9", output), output[-2000:]
    metrics = chief_metrics(output)
    assert metrics["global_step"] == 100 and metrics["exports"]
    assert_all_stopped(pids)


def test_mirrored_workers(census_files, tmp_path):
    # MultiWorkerMirrored all-reduces every step: 20-40x slower here, so only a few steps.
    job_dir = tmp_path / "job"
    status, output, pids = run_cluster(
        job_dir, census_files, cluster_flags=["--mirrored", "--workers", "2"],
        trainer_flags=["--train-steps", "20", "--eval-every-steps", "10", "--eval-steps", "2"])
    assert status == 0, output[-3000:]
    assert set(pids) == {"worker-0", "worker-1"}
    assert_all_stopped(pids)
    metrics = chief_metrics(output, "worker-0")
    assert metrics["global_step"] == 20
    assert (job_dir / "export" / "census").is_dir() and metrics["exports"]
    assert not (job_dir / "workers" / "1").exists()  # worker 1 removed its private copy
    assert chief_metrics(output, "worker-1")["exports"] == []  # and reports none of it
    assert "[cluster] chief exit status 0; all tasks stopped (worker-0 0, worker-1 0)" in output


def test_evaluator_evaluates_the_chiefs_checkpoints(census_files, evaluated_cluster,
                                                    capsys, monkeypatch):
    # An evaluator task beside chief + 2 workers + 1 ps: outside the cluster spec, it
    # evaluates each checkpoint the chief writes and exits after the last one.
    job_dir, tmp, status, output, pids = evaluated_cluster
    assert status == 0, output[-3000:]
    assert list(tmp.iterdir()) == []  # workers and ps end by SIGTERM: their files went too
    assert set(pids) == {"chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"}
    assert_all_stopped(pids)
    assert re.search(r"all tasks stopped \(.*evaluator-0 0\)", output), output[-2000:]
    rows = (job_dir / "eval_sidecar" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("checkpoint,global_step,") and "auc" in rows[0]
    assert rows[-1].startswith("ckpt-0002,300,")  # the chief's last checkpoint, evaluated
    assert list((job_dir / "eval_sidecar").glob("events.out.tfevents.*"))
    assert "[evaluator-0] evaluated ckpt-0002 (step 300)" in output
    evaluator = chief_metrics(output, "evaluator-0")
    assert evaluator["global_step"] == 300 and evaluator["exports"] == []
    assert abs(evaluator["accuracy"] - chief_metrics(output)["accuracy"]) < 0.02
    # Each role's log reads cleanly: the evaluator does not list the chief's optimizer state
    # it leaves unrestored, and the chief prints each TensorFlow message once.
    assert "could not be found in the restored object" not in output
    chief_log = (job_dir / "logs" / "cluster" / "chief-0.log").read_text().splitlines()
    assert chief_log.count("INFO:tensorflow:Number of GPUs on workers: 0") == 1
    assert "No checkpoints appear to be found" not in output  # it waits for the next one
    assert "[evaluator-0] evaluated ckpt-0001 (step 150): " in output and \
        "; waiting for the chief's next checkpoint" in output

    # The same trainer flags again, in this process (no cluster start-up): the job dir holds
    # the run, not its layout. The chief, here alone, resumes the finished run (nothing left
    # to train, no second export); an evaluator, as the launcher starts one beside it, reads no
    # checkpoint of before its start (ckpt-0002 was the run's last: nothing to evaluate). The
    # run's metrics.csv keeps its rows, and neither leaves a file in the temporary folder.
    import tempfile

    from census import task
    exports = export.list_versions(job_dir / "export" / "census")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    _, trainer_flags = EVALUATED
    flags = ["--train-files", census_files.train, "--eval-files", census_files.validation,
             "--job-dir", str(job_dir), *trainer_flags]
    capsys.readouterr()
    chief = task.main(flags)
    again = capsys.readouterr()
    assert "train_and_evaluate: resuming at step 300 of 300; nothing left to train\n" in \
        again.err
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {}, "task": {"type": "evaluator",
                                                                       "index": 0}}))
    evaluator = task.main(flags)
    said = capsys.readouterr().out
    assert "ckpt-0002, the run's last checkpoint, was written before this evaluator " \
        "started: nothing to evaluate\n" in said
    assert "evaluated ckpt-" not in said and "SidecarEvaluator stops" not in said
    assert (job_dir / "eval_sidecar" / "metrics.csv").read_text().splitlines() == rows
    assert export.list_versions(job_dir / "export" / "census") == exports
    assert chief["exports"] == exports[-1:]
    assert evaluator["global_step"] == 300 and evaluator["exports"] == []
    assert list(tmp.iterdir()) == []
    monkeypatch.delenv("TF_CONFIG")

    # Other flags: the chief (here `census train` alone, in this process, as the chief
    # checks) refuses, in one sentence naming them.
    with pytest.raises(SystemExit) as other:
        cli.main(["train", "--train-files", census_files.train, "--eval-files",
                  census_files.validation, "--job-dir", str(job_dir), "--train-steps", "600",
                  "--eval-every-steps", "150"])
    assert other.value.code == (
        f"census train: {job_dir} holds a run with other flags (--train-steps was 300, now "
        "600): rerun with its flags to resume it, or give another --job-dir")


def test_the_evaluator_reads_only_checkpoints_written_after_it_started(trained_job,
                                                                       census_files, tmp_path):
    """A resumed run's evaluator: the chief's checkpoint of before (ckpt-0001, as a run
    stopped after its first interval leaves it) is not evaluated; the next one is, and it is
    the run's last. The chief is played by TensorFlow's own checkpoint-state writer, on the
    checkpoints of a real run."""
    import queue
    import shutil
    import threading

    import tensorflow as tf
    trained_dir, _ = trained_job
    job_dir = tmp_path / "job"
    shutil.copytree(trained_dir / "checkpoints", job_dir / "checkpoints")
    tf.compat.v1.train.update_checkpoint_state(str(job_dir / "checkpoints"), "ckpt-0001")
    evaluator = subprocess.Popen(
        [sys.executable, "-m", "census.task", "--train-files", census_files.train,
         "--eval-files", census_files.validation, "--job-dir", str(job_dir), "--train-steps",
         str(SMOKE_STEPS), "--eval-every-steps", "150"], cwd=REPO, text=True,
        env=dict(os.environ, TF_CONFIG=json.dumps({"cluster": {}, "task": {"type": "evaluator",
                                                                         "index": 0}})),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in evaluator.stdout],
                     daemon=True).start()
    output, deadline = [], time.monotonic() + 120
    try:
        while not any(line.startswith("waiting for the chief's checkpoints after ckpt-0001 ")
                      for line in output):
            assert evaluator.poll() is None and time.monotonic() < deadline, "".join(output)
            with contextlib.suppress(queue.Empty):
                output.append(lines.get(timeout=1))
        tf.compat.v1.train.update_checkpoint_state(  # the chief's next (and last) checkpoint
            str(job_dir / "checkpoints"), "ckpt-0002", ["ckpt-0001", "ckpt-0002"])
        status = evaluator.wait(timeout=120)
    finally:
        processes.stop([evaluator])
    time.sleep(0.5)  # the reader thread's last lines
    while not lines.empty():
        output.append(lines.get())
    text = "".join(output)
    assert status == 0, text[-3000:]
    assert "evaluated ckpt-0002 (step 300): " in text and "evaluated ckpt-0001" not in text
    rows = (job_dir / "eval_sidecar" / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["checkpoint", "ckpt-0002"]


def test_a_2017_style_cluster_trains(census_files, tmp_path):
    """master + worker + ps, named and shaped as Cloud ML Engine's TF_CONFIG was (with
    `environment` and a `trial`): the unchanged trainer runs it, in a private network."""
    private = namespace.Namespace()
    ports = processes.free_ports(3)
    spec = {"master": [f"localhost:{ports[0]}"], "worker": [f"localhost:{ports[1]}"],
            "ps": [f"localhost:{ports[2]}"]}
    procs = {}
    try:
        for kind in ("master", "worker", "ps"):
            config = {"cluster": spec, "task": {"type": kind, "index": 0, "trial": "1"},
                      "environment": "cloud"}
            procs[kind] = subprocess.Popen(private.wrap([
                sys.executable, "-m", "census.task", "--train-files", census_files.train,
                "--eval-files", census_files.validation, "--job-dir", str(tmp_path / "job"),
                "--train-steps", "40", "--eval-every-steps", "40", "--eval-steps", "2",
                "--verbosity", "ERROR"]), env=dict(os.environ, TF_CONFIG=json.dumps(config)),
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = procs["master"].communicate(timeout=240)
        assert procs["master"].returncode == 0, err[-3000:]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.communicate()
        private.stop()
    metrics = json.loads(out)
    assert metrics["global_step"] == 40
    assert metrics["exports"][0].startswith(str(tmp_path / "job" / "1" / "export" / "census"))


def test_task_timeline_plot():
    import pandas as pd

    from census import plots
    events = pd.DataFrame({"seconds": [0.0, 1.0, 2.5, 3.0, 4.0],
                           "role": ["chief-0", "worker-0", "chief-0", "evaluator-0", "launcher"],
                           "event": ["started", "serving", "", "evaluator: checkpoint evaluated",
                                     ""]})
    fig = plots.task_timeline(events)
    [ax] = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == \
        ["chief-0", "worker-0", "evaluator-0", "launcher"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["a log line", "started", "serving", "evaluator: checkpoint evaluated"]


def test_a_clusters_lines_read_by_role_and_as_events(capsys):
    from census.distribute import logs
    stamped = [(0.1, "[cluster] started chief-0 (pid 1)"), (0.2, "[cluster] started ps-0 (pid 2)"),
               (1.0, "[ps-0] I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers"),
               (2.0, "[ps-0] ps 0 (grpc://localhost:1) holds the variables, until stopped"),
               (3.0, "[chief-0] Epoch 1/2"), (3.1, "[chief-0] waiting"),
               (3.2, "[chief-0] waiting"), (4.0, "[chief-0] 5/5 - loss: 0.3 - val_loss: 0.28"),
               (5.0, "[cluster] chief exit status 0; all tasks stopped")]
    logs.show_by_role([line for _, line in stamped])
    out = capsys.readouterr().out
    assert "--- ps-0: 2 lines, 1 of them TensorFlow start-up notes" in out
    assert "cudart" not in out and "    waiting   (×2)" in out
    events = logs.events(stamped)
    assert list(events["role"]) == ["chief-0", "ps-0", "ps-0", "ps-0", "chief-0", "chief-0",
                                    "chief-0", "chief-0", "launcher"]
    assert list(events["event"]) == ["started", "started", "", "serving", "interval starts", "",
                                     "", "interval ends: chief evaluated", "all tasks stopped"]
