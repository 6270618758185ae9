"""The processes the course starts (cluster tasks, tuning trials, model servers, Jupyter): the
loopback ports they listen on, and stopping them.

Ports: `free_port()` / `free_ports(n)`, the one way the package, its tests, benchmarks and
rehearsals pick a port. Stopping: one rule for all of them: ask (SIGTERM), wait a little, then
insist (SIGKILL). A process started with `start_new_session=True` is stopped with its whole
group (a trial's trainer and anything it started), so nothing is left running.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_ports(n):
    """`n` distinct TCP ports that are free on 127.0.0.1 now. Each is found by binding
    127.0.0.1:0 (the kernel picks an unused port); all are held until the last is found, so
    they differ, then released for the caller's servers to bind. A small race remains: another
    process may take a port between its release here and the server's bind; that is accepted
    (loopback only, servers started at once)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port():
    """One TCP port free on 127.0.0.1 now: `free_ports(1)[0]` (with the same small race)."""
    return free_ports(1)[0]


def stop(procs, grace=10.0, group=False):
    """Stop `procs` (subprocess.Popen objects; finished ones are skipped): SIGTERM, then
    SIGKILL whatever still runs after `grace` seconds (0: SIGKILL at once). `group`: signal
    each process's process group instead. Returns their exit statuses."""
    procs = list(procs)
    running = [p for p in procs if p is not None and p.poll() is None]
    for p in running:
        _signal(p, signal.SIGTERM if grace else signal.SIGKILL, group)
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(p, signal.SIGKILL, group)
            p.wait()
    return [p.returncode for p in procs if p is not None]


def _signal(proc, signum, group):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)


TERMINATION = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                    if hasattr(signal, name))  # SIGHUP: the terminal closed (not on Windows)


@contextlib.contextmanager
def exit_on_termination():
    """SIGTERM (what `stop` and most launchers send first) and SIGHUP unwind as Ctrl-C does,
    as `sys.exit(128 + signal)`: with-blocks and finally clauses run, temporary folders are
    removed. Only in the main thread (elsewhere Python cannot install a handler): a no-op
    there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda signum, _: sys.exit(128 + signum))
                for s in TERMINATION}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def private_tmpdir(prefix):
    """A temporary folder for the processes we start (yields the environment variables that
    make it theirs: {"TMPDIR": path}), removed when the block ends: what they leave in it goes
    with it, however they ended (even SIGKILL, which no handler of theirs sees)."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield {"TMPDIR": path}
    finally:
        shutil.rmtree(path, ignore_errors=True)
