"""A local cluster: the unchanged trainer, once per task, each process with its own TF_CONFIG.

    census cluster --scale-tier STANDARD_1 --workers 2 --ps 1 -- --job-dir JOB [trainer flags]

The 2017 post ran the same `trainer.task` on a Cloud ML Engine scale tier; here every task of
the tier is a local process. TF's gRPC servers listen on every interface, so all tasks run in
one loopback-only network namespace: as root a plain one (`unshare --net`), as an ordinary user
one inside a user namespace of its own (`unshare --user --map-root-user --net`, which Linux
allows without privileges), which every task joins with `nsenter`. Where no namespace can be
made (macOS, Windows, a locked-down container) the launcher refuses to run unless you pass
--allow-host-network; `CENSUS_NETNS=off` makes it behave as there (to rehearse that case). Logs stream prefixed by role and are kept
per role in `<job_dir>/logs/cluster/`; the command exits with the chief's status and stops
every process it started, whatever happens. With --evaluator, an evaluator task (outside the
cluster spec) evaluates each checkpoint the chief writes, as the 2017 evaluator did.
"""
import argparse
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from census import flags

NETNS_SWITCH = "CENSUS_NETNS"  # "off": act as if no network namespace could be made
# A namespace's first process: brings the loopback interface up (ioctl SIOCSIFFLAGS, so that
# no `ip` command is needed), says so, and lives until the launcher closes its stdin.
_HOLDER = r"""
import fcntl, socket, struct, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
print("ready", flush=True)
sys.stdin.read()
"""


def netns_commands():
    """(the `unshare` command that makes the namespace, the `nsenter` flags that join it).

    Root keeps its full rights in a plain network namespace. An ordinary user gets one owned
    by a user namespace of its own, and a task must join both (`nsenter --net` alone is
    refused: "reassociate to namespace 'ns/net' failed: Operation not permitted")."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ("unshare", "--net"), ("--net",)
    return (("unshare", "--user", "--map-root-user", "--net"),
            ("--user", "--net", "--preserve-credentials"))


@dataclasses.dataclass(frozen=True)
class Layout:
    """How many replicas of each task type. No chief: worker 0 leads (MultiWorkerMirrored)."""
    chief: int = 1
    workers: int = 0
    ps: int = 0
    evaluator: int = 0
    gpus: int = 0  # per replica, for the cloud; ignored locally

    def tasks(self):
        """(type, index) of every process to start, chief first."""
        counts = {"chief": self.chief, "worker": self.workers, "ps": self.ps}
        return [(kind, i) for kind, n in counts.items() for i in range(n)]

    def cluster(self, ports):
        """The TF_CONFIG `cluster` dict, given one port per task (in `tasks()` order)."""
        spec = {}
        for (kind, _), port in zip(self.tasks(), ports):
            spec.setdefault(kind, []).append(f"localhost:{port}")
        return spec

    def vertex_pools(self):
        """Replica counts of Vertex AI's worker pools: [0] chief, [1] workers, [2] parameter
        servers, [3] evaluator (trailing empty pools dropped)."""
        if not self.chief:  # Vertex's pool 0 is always one replica: the leading worker
            pools = [1, self.workers - 1, self.ps, self.evaluator]
        else:
            pools = [self.chief, self.workers, self.ps, self.evaluator]
        while pools and not pools[-1]:
            pools.pop()
        return pools

    @property
    def strategy(self):
        if not (self.workers or self.ps):
            return "local"
        return "parameter_server" if self.ps else "multi_worker"


# Cloud ML Engine's scale tiers (2017), as replica counts. CUSTOM takes the counts you give.
TIERS = {
    "BASIC": Layout(),
    "STANDARD_1": Layout(chief=1, workers=4, ps=3),
    "PREMIUM_1": Layout(chief=1, workers=19, ps=11),
    "BASIC_GPU": Layout(gpus=1),
    "CUSTOM": Layout(chief=1, workers=2, ps=1),
}
LOCAL_DEFAULT = TIERS["CUSTOM"]  # chief + 2 workers + 1 ps: what 2 cores can carry


def layout_for(tier="CUSTOM", workers=None, ps=None, mirrored=False, evaluator=0):
    """The tier's layout with replica counts scaled (`workers`, `ps`); `mirrored`: a
    worker-only MultiWorkerMirrored layout of `workers` processes (default 2)."""
    if tier not in TIERS:
        raise ValueError(f"scale tier must be one of {', '.join(TIERS)}, not {tier!r}")
    if mirrored:
        if ps:
            raise ValueError("a MultiWorkerMirrored layout has no parameter servers")
        return Layout(chief=0, workers=2 if workers is None else workers, evaluator=evaluator)
    base = TIERS[tier]
    return dataclasses.replace(base, workers=base.workers if workers is None else workers,
                               ps=base.ps if ps is None else ps, evaluator=evaluator)


class ClusterError(Exception):
    pass


def free_ports(n):
    """`n` distinct free TCP ports on the loopback interface."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _role(kind, index):
    return f"{kind}-{index}"


class Namespace:
    """A loopback-only network namespace, held by one small process; `wrap(argv)` runs a
    command inside it. Raises ClusterError, in one sentence, where none can be made."""

    def __init__(self, commands=None):
        unshare, self.join = commands or netns_commands()
        err = None
        if os.environ.get(NETNS_SWITCH) == "off":
            self.proc, err = None, f"{NETNS_SWITCH}=off"
        else:
            try:
                self.proc = subprocess.Popen([*unshare, sys.executable, "-c", _HOLDER],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)
            except OSError as e:  # no `unshare` (macOS, Windows)
                self.proc, err = None, e.strerror or str(e)
        if self.proc and self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            stderr = self.proc.communicate()[1]
            err = (stderr.strip().splitlines() or [f"exit status {self.proc.returncode}"])[-1]
            self.proc = None
        if err:
            raise ClusterError(
                f"cannot create a loopback-only network namespace with `{' '.join(unshare)}` "
                f"({err}); TF's gRPC servers listen on every network interface, so a local "
                "cluster runs inside one. Pass --allow-host-network to run on this machine's "
                "network instead: the task ports are then open on all its interfaces for "
                "as long as the cluster runs.")

    def wrap(self, argv):
        return ["nsenter", "-t", str(self.proc.pid), *self.join, "--", *argv]

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.communicate()


def private_network_possible():
    """Whether `census cluster` can isolate its tasks here (it makes and drops a namespace)."""
    try:
        Namespace().stop()
        return True
    except ClusterError:
        return False


COLAB_HOST_NETWORK = (
    "No network namespace can be made on this Colab runtime, so the cluster's tasks listen on "
    "the runtime's own network. That is acceptable here: a Colab runtime is a virtual machine "
    "of yours alone, which the internet cannot connect to (Colab reaches it through its own "
    "tunnel), and the ports close when the cluster stops.")


def host_network_on_colab():
    """True on a Colab runtime where no network namespace can be made, after saying why its own
    network is acceptable there (`COLAB_HOST_NETWORK`); False everywhere else."""
    from census import colab
    if not colab.on_colab() or private_network_possible():
        return False
    print(COLAB_HOST_NETWORK, flush=True)
    return True


def _stop(procs, grace=10.0):
    """SIGTERM, then SIGKILL whatever is still running after `grace` seconds."""
    procs = [p for p in procs if p and p.poll() is None]
    for p in procs:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _stream(proc, role, log_path, lock, out):
    """Copy a task's output to `out`, each line prefixed with `[role]`, and to its log file."""
    with open(log_path, "a", buffering=1) as log:
        for line in proc.stdout:
            log.write(line)
            with lock:
                out.write(f"[{role}] {line}")
                out.flush()


def _job_dir(trainer_args):
    for i, arg in enumerate(trainer_args):
        if arg == "--job-dir" and i + 1 < len(trainer_args):
            return trainer_args[i + 1]
        if arg.startswith("--job-dir="):
            return arg.split("=", 1)[1]
    raise ClusterError("the trainer flags need --job-dir (logs go to <job_dir>/logs/cluster/)")


def run(layout, trainer_args, module="census.task", timeout=3600, netns_commands=None,
        allow_host_network=False, out=None, log_dir=None):
    """Start every task of `layout` as `python -m module trainer_args` with its TF_CONFIG,
    wait for the chief, stop everything, and return the chief's exit status (124 on timeout).
    Per-role logs go to `log_dir` (default `<job_dir>/logs/cluster/`)."""
    out = out or sys.stdout
    log_dir = log_dir or os.path.join(_job_dir(trainer_args), "logs", "cluster")
    if "://" in log_dir:
        raise ClusterError(f"a local cluster needs a local job dir, not {log_dir}")
    os.makedirs(log_dir, exist_ok=True)
    tasks = layout.tasks() if layout.strategy != "local" else [("chief", 0)]
    ports = free_ports(len(tasks))
    # Evaluators are not part of the cluster spec: they only read the chief's checkpoints.
    evaluators = [("evaluator", i) for i in range(layout.evaluator)]
    namespace = None if allow_host_network else Namespace(netns_commands)
    procs, threads, lock = {}, [], threading.Lock()
    status = None
    try:
        for kind, index in tasks + evaluators:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
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
        _stop(list(procs.values()))  # PSS workers and ps serve forever: they stop here
        if namespace:
            namespace.stop()
        for t in threads:
            t.join(timeout=5)
        with lock:
            codes = ", ".join(f"{r} {p.returncode}" for r, p in procs.items())
            print(f"[cluster] chief exit status {status}; all tasks stopped ({codes})",
                  file=out, flush=True)


def parser():
    p = argparse.ArgumentParser(
        prog="census cluster", allow_abbrev=False,
        usage="census cluster [options] -- --job-dir JOB [trainer flags]",
        description="Run the trainer as a local cluster, one process per task.")
    p.add_argument("--scale-tier", choices=TIERS, default="CUSTOM",
                   help="Cloud ML Engine tier whose layout to run (default CUSTOM: chief + "
                   "2 workers + 1 ps)")
    p.add_argument("--workers", type=flags.whole(1), help="scale the tier's worker count to this")
    p.add_argument("--ps", type=flags.whole(0), help="scale the tier's parameter server count to this")
    p.add_argument("--mirrored", action="store_true",
                   help="worker-only layout (MultiWorkerMirroredStrategy), --workers processes")
    p.add_argument("--evaluator", action="store_true",
                   help="also run an evaluator task on the chief's checkpoints")
    p.add_argument("--module-name", default="census.task", help="the trainer module")
    p.add_argument("--timeout", type=flags.number(above=0), default=3600, help="stop everything after this "
                   "many seconds (exit status 124)")
    p.add_argument("--allow-host-network", action="store_true",
                   help="run without a private network namespace: task ports are then open "
                   "on every interface of this host")
    return p


def main(argv=None, netns_commands=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, trainer_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) \
        if "--" in argv else (argv, [])
    args = parser().parse_args(ours)
    # Ctrl-C raises KeyboardInterrupt; make SIGTERM unwind the same way, so `run` cleans up.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        layout = layout_for(args.scale_tier, args.workers, args.ps, args.mirrored,
                            evaluator=int(args.evaluator))
        status = run(layout, trainer_args, args.module_name, args.timeout, netns_commands,
                     args.allow_host_network)
    except (ClusterError, ValueError) as e:
        sys.exit(f"census cluster: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.exit(status)


if __name__ == "__main__":
    main()
