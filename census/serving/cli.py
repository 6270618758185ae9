"""`census serve`: the exports of a base directory over TF Serving's REST API (chapter 9)."""
import argparse
import dataclasses
import logging
import os
import signal
import sys
import textwrap
import threading
import time

from census import flags, quiet
from census.flags import option
from census.serving.protocol import DEFAULT_MODEL_NAME, DEFAULT_PORT, DIFFERENCES, MAX_REQUEST_BYTES


def add_command(subparsers):
    """Add `census serve` to the `census` command's subparsers."""
    p = subparsers.add_parser(
        "serve", allow_abbrev=False, help="serve exports over TF Serving's REST API (chapter 9)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the exports under --model-base-path over TensorFlow Serving's REST "
                    "API and Vertex AI's predict format (newest version; new exports load as "
                    "they appear).",
        epilog="Deliberate differences from TensorFlow Serving's REST API:\n" + "\n".join(
            textwrap.fill(d, 88, initial_indent="  - ", subsequent_indent="    ")
            for d in DIFFERENCES))
    add_arguments(p)
    p.set_defaults(run=run)


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """What `census serve` does; each field is its flag (`--model-base-path` …), checked when
    built (raises census.flags.ConfigError)."""
    model_base_path: str = option(None, help="the export base directory, JOB_DIR/export/census "
                                  "(new versions load as they appear), or one SavedModel "
                                  "directory (served as version 1); a gs:// one is copied first "
                                  "(default: $AIP_STORAGE_URI, which Vertex AI sets)")
    model_name: str = option(DEFAULT_MODEL_NAME)
    host: str = option("127.0.0.1", help="address to bind (default 127.0.0.1; a container "
                       "needs 0.0.0.0)")
    port: int = option(None, flags.PORT, f"default $AIP_HTTP_PORT when Vertex sets it, else "
                       f"{DEFAULT_PORT}")
    poll_seconds: float = option(1.0, flags.number(above=0), "how often to look for new "
                                 "versions")
    keep_versions: int = option(1, flags.whole(1), "how many of the newest versions stay "
                                "loaded, to be pinned (TF Serving's `latest { num_versions }`, "
                                "1 by default there too)")
    max_batch_rows: int = option(512, flags.whole(1))
    model_threads: int = option(1, flags.whole(1), "model calls that may run at once (each in "
                                "its own worker thread)")
    batch_window_ms: float = option(0.0, flags.number(least=0), "extra wait for more requests "
                                    "before a model call (default: none; calls take whatever "
                                    "arrived while the previous one ran)")
    max_request_bytes: int = option(MAX_REQUEST_BYTES, flags.whole(1))
    http: str = option("auto", choices=("auto", "h11", "httptools"),
                       help="uvicorn's HTTP parser (auto: httptools when installed)")
    stop_with_parent: bool = option(False, help="shut down when the process that started this "
                                    "one ends (notebooks)")
    log_level: str = option("warning", choices=("critical", "error", "warning", "info", "debug"))

    def __post_init__(self):
        flags.check(self)


def add_arguments(p):
    """The options of `census serve` (the fields of ServeConfig), on parser `p`."""
    flags.add_arguments(p, ServeConfig)


def options(model_base_path, **overrides):
    """The ServeConfig of `census serve --model-base-path PATH` with `overrides` (field names,
    e.g. poll_seconds=0.2), checked. Raises ConfigError, TypeError for an unknown name."""
    return ServeConfig(model_base_path=str(model_base_path), **overrides)


def build(args):
    """The app `args` describe: a ModelWatcher on the base path, a Batcher, the routes.
    Raises census.serving.versions.LayoutError for a base path of the wrong shape."""
    from census.serving.app import create_app
    from census.serving.batching import Batcher
    from census.serving.versions import ModelWatcher
    watcher = ModelWatcher(args.model_base_path, args.model_name, keep=args.keep_versions,
                           poll_seconds=args.poll_seconds)
    batcher = Batcher(max_batch_rows=args.max_batch_rows, max_inflight=args.model_threads,
                      window_ms=args.batch_window_ms)
    return create_app(watcher, batcher, args.max_request_bytes)


def run(args):
    """`census serve`: serve until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn
    args = flags.from_namespace(ServeConfig, args)
    port = args.port
    if port is None:
        try:
            port = flags.PORT(os.environ.get("AIP_HTTP_PORT", str(DEFAULT_PORT)))
        except argparse.ArgumentTypeError as e:
            sys.exit(f"census serve: $AIP_HTTP_PORT {e}")
    source = args.model_base_path or os.environ.get("AIP_STORAGE_URI")
    if not source:
        sys.exit("census serve: give --model-base-path (or set $AIP_STORAGE_URI)")
    from census.serving import artifacts
    try:
        args = dataclasses.replace(args, model_base_path=artifacts.local_path(source))
    except artifacts.FetchError as e:
        sys.exit(f"census serve: {e}")
    quiet.import_tensorflow()
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    from census.serving.versions import LayoutError
    copied = f" (copied into {args.model_base_path})" if source != args.model_base_path else ""
    try:
        app = build(args)
    except LayoutError as e:
        sys.exit(f"census serve: {e}" + (f" (a copy of {source})" if copied else ""))
    if args.stop_with_parent:
        stop_with_parent()
    print(f"census serve: model {args.model_name} from {source}{copied} on "
          f"http://{args.host}:{port}/v1/models/{args.model_name}", flush=True)
    uvicorn.run(app, host=args.host, port=port, log_level=args.log_level,
                access_log=False, http=args.http, timeout_graceful_shutdown=5)


def stop_with_parent():
    """SIGTERM ourselves (uvicorn then shuts down cleanly) once our parent process is gone, so
    a server started from a notebook never outlives its kernel."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="census-stop-with-parent", daemon=True).start()
