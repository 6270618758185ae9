"""Colab: install what a chapter needs and nothing Colab already has, so no restart is needed.

A chapter's setup cell clones the course, puts the clone on `sys.path` and calls `install`.
Colab preinstalls TensorFlow, tf_keras, pandas, numpy, protobuf, ipykernel and most of what
the course imports (its package list: github.com/googlecolab/backend-info); pip is told to
keep every installed distribution at its version (a constraints file of all of them), so it
adds the few packages a chapter lacks (papermill, google-cloud-aiplatform …) and changes
nothing that is already loaded. Standard library only: it runs before anything is installed.
"""
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

from census import DISTRIBUTION

# What each extra brings that a chapter imports (checked before anything is installed).
EXTRA_MODULES = {"colab": ("papermill", "google.cloud.aiplatform_v1")}


class SetupError(SystemExit):
    """One sentence for the learner, shown by Jupyter without a traceback."""


def on_colab():
    """Whether this runs on Colab (its `google.colab` module is there)."""
    return bool(importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"))


def installed_versions():
    """{normalized distribution name: version} of everything importable, first on sys.path
    winning (as `import` does)."""
    versions = {}
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower()
        if name and name not in versions:
            versions[name] = dist.version
    return versions


def missing(extras):
    """What is not there yet: the course's distribution (for `!census …`) or an extra's
    modules."""
    absent = [] if DISTRIBUTION in installed_versions() else [DISTRIBUTION]
    return absent + [m for extra in extras for m in EXTRA_MODULES[extra]
                     if importlib.util.find_spec(m) is None]


def install(clone, extras=(), pip=None):
    """`pip install CLONE[EXTRAS]` with every installed distribution held at its version.

    Does nothing when all is there already (a rerun of the cell, or a new runtime on the same
    VM). Raises SetupError, in one sentence, if pip cannot install without changing something
    Colab preinstalls. Returns the list of what was missing."""
    needed = missing(extras)
    if not needed:
        return needed
    held = {name: version for name, version in installed_versions().items()
            if name != DISTRIBUTION}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("".join(f"{name}=={version}\n" for name, version in sorted(held.items())))
    target = f"{clone}[{','.join(extras)}]" if extras else str(clone)
    print(f"Installing the course for this chapter ({', '.join(needed)}); nothing Colab "
          "preinstalls changes …", flush=True)
    try:
        done = subprocess.run([*(pip or [sys.executable, "-m", "pip"]), "install", "--quiet",
                               "--constraint", constraints.name, target],
                              capture_output=True, text=True)
    finally:
        os.unlink(constraints.name)
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SetupError(f"pip could not install {target} without changing a package this "
                         f"runtime already has ({reason}). Start a fresh runtime (Runtime → "
                         "Disconnect and delete runtime) and run this cell again.")
    now = installed_versions()
    changed = {n: (v, now.get(n)) for n, v in held.items() if now.get(n) != v}
    if changed:  # cannot happen with the constraints above; said plainly if it ever does
        raise SetupError("pip changed " + ", ".join(f"{n} {a} → {b}" for n, (a, b) in
                                                    changed.items())
                         + ": restart the runtime (Runtime → Restart session), then run this "
                           "cell again.")
    return needed


COLAB_HOST_NETWORK = (
    "No network namespace can be made on this Colab runtime, so the cluster's tasks listen on "
    "the runtime's own network. That is acceptable here: a Colab runtime is a virtual machine "
    "of yours alone, which the internet cannot connect to (Colab reaches it through its own "
    "tunnel), and the ports close when the cluster stops.")


def host_network_on_colab():
    """True on a Colab runtime where no network namespace can be made, after saying why its own
    network is acceptable there (`COLAB_HOST_NETWORK`); False everywhere else."""
    from census.distribute.namespace import private_network_possible
    if not on_colab() or private_network_possible():
        return False
    print(COLAB_HOST_NETWORK, flush=True)
    return True
