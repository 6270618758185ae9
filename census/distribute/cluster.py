"""A local cluster: the unchanged trainer, once per task, each with its own TF_CONFIG.

    census cluster --scale-tier STANDARD_1 --workers 2 --ps 1 -- --job-dir JOB [trainer flags]

Chapter 7. The 2017 post ran the same `trainer.task` on a Cloud ML Engine scale tier; here
every task of the tier is a local process, all of them in one loopback-only network namespace
(`census.distribute.namespace`; `--allow-host-network` runs them on this machine's network
instead). Logs stream prefixed by role and are kept per role in `<job_dir>/logs/cluster/`;
the command exits with the chief's status and stops every process it started, whatever
happens, and removes the folder it gave them for temporary files ($TMPDIR). With
--evaluator, an evaluator task (outside the cluster spec) evaluates each checkpoint the chief
writes after it started, as the 2017 evaluator did.
"""
import json
import os
import subprocess
import sys
import threading

from census import processes
from census.distribute.namespace import Namespace


class ClusterError(Exception):
    """A local cluster cannot be started as asked; the message says why."""


def _role(kind, index):
    return f"{kind}-{index}"


def _stream(proc, role, log_path, lock, out):
    """Copy a task's output to `out`, each line prefixed with `[role]`, and to its log file."""
    with open(log_path, "a", buffering=1) as log:
        for line in proc.stdout:
            log.write(line)
            with lock:
                out.write(f"[{role}] {line}")
                out.flush()


def run(layout, trainer, module="census.task", timeout=3600, netns_commands=None,
        allow_host_network=False, out=None, log_dir=None):
    """Start every task of `layout` as `python -m module` with the flags of `trainer` (a
    TrainConfig, or another module's command line: a list of str) and its TF_CONFIG, wait
    for the chief, stop everything, and return the chief's exit status (124 on timeout).
    Per-role logs go to `log_dir` (default `<job_dir>/logs/cluster/`). Raises ClusterError."""
    from census.config import TrainConfig, split_job_dir
    out = out or sys.stdout
    trainer_args = trainer.to_args() if isinstance(trainer, TrainConfig) else list(trainer)
    if log_dir is None:
        job_dir = split_job_dir(trainer_args)[0]
        if not job_dir:
            raise ClusterError("the trainer flags need --job-dir (logs go to "
                               "<job_dir>/logs/cluster/)")
        log_dir = os.path.join(job_dir, "logs", "cluster")
    if "://" in log_dir:
        raise ClusterError(f"a local cluster needs a local job dir, not {log_dir}")
    os.makedirs(log_dir, exist_ok=True)
    tasks = layout.tasks() if layout.strategy != "local" else [("chief", 0)]
    # Evaluators are not part of the cluster spec: they only read the chief's checkpoints.
    evaluators = [("evaluator", i) for i in range(layout.evaluator)]
    namespace = None if allow_host_network else Namespace(netns_commands)
    # The tasks' temporary files go to a folder of ours, removed at the end: workers and ps
    # end by a signal, which leaves a task no time to remove its own.
    with processes.private_tmpdir("census-cluster-") as private_tmp:
        return _run_tasks(layout, tasks, evaluators, trainer_args, module, timeout, namespace,
                          log_dir, out, private_tmp)


def _run_tasks(layout, tasks, evaluators, trainer_args, module, timeout, namespace, log_dir,
               out, env_extra):
    """Start the tasks (with `env_extra` in their environment), wait for the chief, stop
    every task and the namespace; the chief's status."""
    ports = processes.free_ports(len(tasks))
    procs, threads, lock = {}, [], threading.Lock()
    status = None
    try:
        for kind, index in tasks + evaluators:
            env = dict(os.environ, PYTHONUNBUFFERED="1", **env_extra)
            if layout.strategy != "local" or kind == "evaluator":
                spec = layout.cluster(ports) if layout.strategy != "local" else {}
                env["TF_CONFIG"] = json.dumps({"cluster": spec,
                                               "task": {"type": kind, "index": index}})
            argv = [sys.executable, "-m", module, *trainer_args]
            role = _role(kind, index)
            procs[role] = p = subprocess.Popen(namespace.wrap(argv) if namespace else argv,
                                               env=env, stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, text=True)
            with lock:
                print(f"[cluster] started {role} (pid {p.pid})", file=out, flush=True)
            t = threading.Thread(target=_stream, daemon=True,
                                 args=(p, role, os.path.join(log_dir, f"{role}.log"), lock, out))
            t.start()
            threads.append(t)
        chief = procs[_role(*tasks[0])]
        try:
            status = chief.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"[cluster] timed out after {timeout} s: stopping every task", file=out,
                  flush=True)
            status = 124
        if status == 0:
            # Mirrored workers finish on their own, shortly after the chief; evaluators once
            # they have evaluated the chief's last checkpoint.
            waiting = procs if layout.strategy == "multi_worker" else {}
            for p in [*waiting.values(), *(procs[_role(*e)] for e in evaluators)]:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    break
        return status
    finally:
        processes.stop(procs.values())  # PSS workers and ps serve forever: they stop here
        if namespace:
            namespace.stop()
        for t in threads:
            t.join(timeout=5)
        with lock:
            codes = ", ".join(f"{r} {p.returncode}" for r, p in procs.items())
            print(f"[cluster] chief exit status {status}; all tasks stopped ({codes})",
                  file=out, flush=True)
