"""Stopping the processes the course starts (cluster tasks, tuning trials, model servers).

One rule for all of them: ask (SIGTERM), wait a little, then insist (SIGKILL). A process
started with `start_new_session=True` is stopped with its whole group (a trial's trainer and
anything it started), so nothing is left running.
"""
import contextlib
import os
import signal
import subprocess
import time


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
