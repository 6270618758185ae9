"""Where `census serve` finds its model: a local path as given, or a gs:// folder (a Vertex AI
Model's artifacts: `$AIP_STORAGE_URI` in a custom prediction container) copied first.

Vertex AI copies the Model's `artifact_uri` into a bucket of its own and tells the container
where (AIP_STORAGE_URI); the container fetches the files itself. They are copied with
google-cloud-storage (census/gcs.py), not TensorFlow's gs:// file system, which ignores
STORAGE_EMULATOR_HOST, so the copy can be rehearsed against an emulator. The copy is a local
temporary folder, removed when the process exits (SIGTERM included); a base directory of
versions is copied as it stands then (later versions in the bucket are not fetched).
"""
import atexit
import shutil
import signal
import tempfile
import threading

from census import gcs


class FetchError(RuntimeError):
    """The gs:// model could not be copied (no such bucket, nothing there, no access)."""


def local_path(path):
    """`path` itself when local; for a gs:// URI, a fresh temporary folder holding a copy of
    every object under it (removed at exit). Raises FetchError."""
    if not gcs.is_gcs(path):
        return path
    from google.api_core import exceptions as api_errors
    from google.auth import exceptions as auth_errors
    folder = tempfile.mkdtemp(prefix="census-serve-")
    remove_at_exit(folder)
    try:
        gcs.download_folder(path, folder)
    except (FileNotFoundError, ValueError) as e:
        raise FetchError(f"cannot copy the model from {path}: {e}") from None
    except (api_errors.GoogleAPIError, auth_errors.GoogleAuthError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FetchError(f"cannot copy the model from {path}: {first}") from None
    return folder


def remove_at_exit(folder):
    """Remove `folder` when the process exits, or when SIGTERM ends it (uvicorn restores this
    handler after its graceful shutdown and raises the signal again: the exit status stays
    -SIGTERM)."""
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):
        shutil.rmtree(folder, ignore_errors=True)
        signal.signal(signum, previous if callable(previous) else signal.SIG_DFL)
        signal.raise_signal(signum)
    signal.signal(signal.SIGTERM, on_sigterm)
