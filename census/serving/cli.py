"""`census serve`: the exports of a base directory over TF Serving's REST API (chapter 9)."""
import argparse
import logging
import os
import signal
import sys
import textwrap
import threading
import time

from census import flags, quiet
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


def add_arguments(p):
    """The options of `census serve`, on parser `p`."""
    p.add_argument("--model-base-path", required=True,
                   help="the export base directory, JOB_DIR/export/census")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; a container needs 0.0.0.0)")
    p.add_argument("--port", type=flags.PORT, default=None,
                   help=f"default $AIP_HTTP_PORT when Vertex sets it, else {DEFAULT_PORT}")
    p.add_argument("--poll-seconds", type=flags.number(above=0), default=1.0,
                   help="how often to look for new versions")
    p.add_argument("--keep-versions", type=flags.whole(1), default=2,
                   help="how many of the newest versions stay loaded (pinnable)")
    p.add_argument("--max-batch-rows", type=flags.whole(1), default=512)
    p.add_argument("--model-threads", type=flags.whole(1), default=1,
                   help="model calls that may run at once (each in its own worker thread)")
    p.add_argument("--batch-window-ms", type=flags.number(least=0), default=0.0,
                   help="extra wait for more requests before a model call (default: none; "
                        "calls take whatever arrived while the previous one ran)")
    p.add_argument("--max-request-bytes", type=flags.whole(1), default=MAX_REQUEST_BYTES)
    p.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"),
                   help="uvicorn's HTTP parser (auto: httptools when installed)")
    p.add_argument("--stop-with-parent", action="store_true",
                   help="shut down when the process that started this one ends (notebooks)")
    p.add_argument("--log-level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"))


def options(model_base_path, **overrides):
    """The options of `census serve --model-base-path PATH`, with `overrides` (attribute
    names, e.g. poll_seconds=0.2) set over the defaults."""
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--model-base-path", str(model_base_path)])
    for key, value in overrides.items():
        if not hasattr(args, key):
            raise TypeError(f"census serve has no option {key!r}")
        setattr(args, key, value)
    return args


def build(args):
    """The app `args` describe: a ModelWatcher on the base path, a Batcher, the routes."""
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
    if not os.path.isdir(args.model_base_path):
        sys.exit(f"census serve: no directory {args.model_base_path} (expected the export base "
                 "directory, JOB_DIR/export/census)")
    port = args.port
    if port is None:
        try:
            port = flags.PORT(os.environ.get("AIP_HTTP_PORT", str(DEFAULT_PORT)))
        except argparse.ArgumentTypeError as e:
            sys.exit(f"census serve: $AIP_HTTP_PORT {e}")
    quiet.import_tensorflow()
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.stop_with_parent:
        stop_with_parent()
    print(f"census serve: model {args.model_name} from {args.model_base_path} on "
          f"http://{args.host}:{port}/v1/models/{args.model_name}", flush=True)
    uvicorn.run(build(args), host=args.host, port=port, log_level=args.log_level,
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
