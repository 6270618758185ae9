"""Quiet where a library is noisy and nothing is wrong; never where something is.

TensorFlow prints start-up lines on every CPU machine (`cudart_stub … Could not find cuda
drivers`, sometimes `failed call to cuInit: … CUDA error`, oneDNN and CPU-instruction notes),
from C++, before any logging setting of ours can apply. A learner reads them as a failure.
`import_tensorflow` imports it with the stderr *file descriptor* captured, then writes back
every captured line that is not one of those known notes: a real error still shows. The rest
turn a library's log level or warnings down for the length of a `with` block.
"""
import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings

# TensorFlow's start-up notes on a machine without a GPU: nothing is wrong when they appear.
STARTUP_NOTES = re.compile("|".join([
    r"cudart_stub\.cc", r"Could not find cuda drivers", r"failed call to cuInit",
    r"oneDNN custom operations are on", r"All log messages before absl::InitializeLog\(\)",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions", r"rebuild TensorFlow with the appropriate",
    r"Unable to register cu(DNN|FFT|BLAS) factory", r"TF-TRT Warning",
    r"computation placer already registered", r"cuda_executor\.cc", r"cuda_diagnostics",
    r"kernel driver does not appear to be running", r"retrieving CUDA diagnostic information",
    r"hostname:", r"dso_loader\.cc", r"Attempting to register factory for plugin",
    r"oneDNN supports DT_INT32 only on platforms with AVX-512",  # a note, when an op first runs
]))


@contextlib.contextmanager
def startup_notes_dropped():
    """Capture what is written to file descriptor 2 (C++ and Python alike) inside the block;
    afterwards write back every line that is not a known start-up note (`STARTUP_NOTES`)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(True)
                    if not STARTUP_NOTES.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow():
    """`import tensorflow`, with its start-up notes dropped (also those of the search for
    devices, done here without starting TF's runtime: MultiWorkerMirroredStrategy must
    configure that first); its Python INFO logging off. Returns the module."""
    with startup_notes_dropped():
        import tensorflow as tf
        tf.config.list_physical_devices()
    tf.get_logger().setLevel("WARNING")  # no INFO lines naming temporary export folders
    return tf


def shell(command, notes=False):
    """Run `command` in the shell, as Jupyter's `!command` does, and print what it writes:
    its stderr, then its stdout, then its exit status if not 0. TensorFlow's start-up notes
    (`STARTUP_NOTES`) are left out of stderr; with `notes=True` they are shown, each once
    (TensorFlow prints its block twice, as two of its libraries load). Returns None."""
    import subprocess
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    seen, kept = set(), []
    for line in done.stderr.splitlines(True):
        if STARTUP_NOTES.search(line):
            said = line.split("] ", 1)[-1]  # without the time stamp and process id
            if not notes or said in seen:
                continue
            seen.add(said)
        kept.append(line)
    print("".join(kept) + done.stdout, end="")
    if done.returncode:
        print(f"(exit status {done.returncode})")


@contextlib.contextmanager
def logs(name="tensorflow", level=logging.ERROR):
    """The Python logger `name` at `level` or above only, inside the block."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def printing_dropped():
    """Drop what is printed (sys.stdout) inside the block: Keras lists every variable it
    exports."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@contextlib.contextmanager
def warnings_ignored():
    """Python warnings off inside the block (Optuna's ExperimentalWarning, for one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
