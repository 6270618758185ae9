"""`census serve` in a thread of this process, or as a child process (chapter 9).

A notebook starts the server as a child process, so that server and client do not share one
interpreter, and the server stops when the notebook's kernel does, even abruptly
(`--stop-with-parent`); tests and benchmarks run it in a thread (`BackgroundServer`).
"""
import atexit
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from census import processes
from census.serving.protocol import DEFAULT_PORT


class BackgroundServer:
    """`census serve` in a thread of this process (tests, benchmarks); `stop()` ends it.

    The socket is bound before the thread starts, so `url` is valid at once (port 0 picks a
    free port)."""

    def __init__(self, model_base_path, host="127.0.0.1", port=0, wait=True, timeout=120,
                 **options):
        import uvicorn

        from census.serving import cli
        args = cli.options(model_base_path, **options)
        self.app = cli.build(args)
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP
        # (with proto 0, each reply's body waits ~40 ms for a delayed ACK: Nagle's algorithm)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.url = f"http://{host}:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                http=args.http, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="census-serve", daemon=True)
        self.thread.start()
        if wait:
            self.wait_until_serving(timeout)

    @property
    def watcher(self):
        """The server's ModelWatcher."""
        return self.app.state.server.watcher

    @property
    def batcher(self):
        """The server's Batcher."""
        return self.app.state.server.batcher

    def wait_until_serving(self, timeout=120):
        """Wait until the server listens and serves a version; TimeoutError after `timeout`
        seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started and self.watcher.loaded_event.is_set():
                return self
            if not self.thread.is_alive():
                raise RuntimeError("the server thread ended before serving")
            time.sleep(0.02)
        raise TimeoutError(f"no version served within {timeout} s")

    def stop(self):
        """Shut the server down and close its socket."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_process(model_base_path, port=DEFAULT_PORT, timeout=120, command=None,
                  log_path=None, **options):
    """`census serve` as a child process, returned once it serves a version (for notebooks and
    benchmarks: the server and its client then do not share one interpreter). It stops when
    this process exits, even abruptly (`--stop-with-parent`). `options`: ServeConfig fields
    (model_name, http …), checked here (raises ConfigError). `log_path`: where its output
    goes (default: this process's stderr)."""
    from census import flags
    from census.serving import cli
    config = cli.options(model_base_path, port=port, stop_with_parent=True, **options)
    command = command or [sys.executable, "-m", "census", "serve"]
    log = None if log_path is None else open(log_path, "ab")
    proc = subprocess.Popen([*command, *flags.to_args(config)],
                            stdout=subprocess.DEVNULL if log_path is None else log,
                            stderr=None if log_path is None else subprocess.STDOUT)
    if log is not None:
        log.close()  # the child has its own copy
    atexit.register(stop_process, proc)
    url = f"http://127.0.0.1:{port}/v1/models/{config.model_name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"census serve exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if any(s["state"] == "AVAILABLE"
                       for s in json.load(r)["model_version_status"]):
                    return proc
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    stop_process(proc)
    raise TimeoutError(f"census serve did not serve {url} within {timeout} s")


def stop_process(proc, timeout=30):
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it lingers; its exit status."""
    return processes.stop([proc], grace=timeout)[0]
