"""Every notebook the course runs (chapters with papermill, grading, nbval in the tests) talks
to its kernel over Unix sockets in a private folder: no TCP port, so no "Kernel is running
over TCP without encryption" warning; and a kernel that writes to its stderr while it shuts
down prints that, not "RuntimeError: Event loop is closed"."""
import json
import os
import re
import signal
import subprocess
import sys

import nbformat
import pytest

from census.course import environment, runner

REPO = environment.root()
TCP_WARNING = "Kernel is running over TCP"
# The kernel reports how it was reached: transport, and where its sockets are.
REPORT = ("import json\nfrom ipykernel import get_connection_info\n"
          "info = get_connection_info(unpack=True)\n"
          "print(json.dumps({'transport': info['transport'], 'ip': info['ip']}))")

pytestmark = [pytest.mark.slow,  # notebooks run by papermill, nbval and the grader
              pytest.mark.skipif(os.name != "posix", reason="Unix sockets")]


def tiny_notebook(path, *cells):
    """A notebook of a parameters cell then `cells`; returns its path."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "language": "python", "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("QUICK = False\nJOB_DIR = ''",
                                          metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def reported(path):
    """The kernel's report (REPORT's printed line) in an executed notebook."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stdout" and '"transport"' in output.text:
                return json.loads(output.text)
    pytest.fail(f"no connection report in {path}")


def outside_pytest():
    """This environment less PYTEST_CURRENT_TEST: under pytest, ipykernel never captures file
    descriptors, and the kernels here must run as they do outside the tests."""
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def python(code, cwd, timeout=180):
    """Run `python -c code` (the kernels it starts write to its stderr)."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=outside_pytest())


def test_kernel_manager_is_ipc_in_a_private_folder():
    km = runner.kernel_manager_class()()
    folder = runner.kernel_folder()
    assert km.transport == "ipc" and km.ip.startswith(folder + os.sep)
    assert km.connection_file.startswith(folder + os.sep)
    assert os.stat(folder).st_mode & 0o077 == 0  # this user's only
    assert runner.kernel_manager_class(sync=True)().transport == "ipc"


def test_papermill_runs_use_ipc_and_stderr_is_quiet(tmp_path):
    """The path of `make course`, `make outputs` and grading: runner.papermill_run."""
    source = tiny_notebook(tmp_path / "in.ipynb", REPORT)
    out = tmp_path / "out.ipynb"
    done = python(f"from census.course import runner\n"
                  f"runner.papermill_run({str(source)!r}, {str(out)!r}, {{'QUICK': True}}, "
                  f"{str(tmp_path)!r})\nprint(runner.kernel_folder())", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert TCP_WARNING not in done.stderr and "Traceback" not in done.stderr, done.stderr
    folder = done.stdout.strip().splitlines()[-1]
    report = reported(out)
    assert report["transport"] == "ipc" and report["ip"].startswith(folder + os.sep)
    assert not os.path.exists(folder)  # removed at exit, sockets and connection file too


# At exit ipykernel stops its IOPub thread, then restores sys.stdout and sys.stderr
# (IPKernelApp.reset_io): here a C library writes to file descriptor 2 in between, as happened
# while chapter 8's kernel shut down, and the kernel's stderr stream is then closed, as the
# interpreter's finalization did there. (IPython empties the notebook's namespace before: the
# function keeps what it needs in its defaults.)
LATE_WRITE = """import os, sys, time
from ipykernel.kernelapp import IPKernelApp

def late_write(app, os=os, time=time, reset_io=IPKernelApp.reset_io, stream=sys.stderr):
    stream._flush_pending = False  # nothing else printed just before
    os.write(2, b"a C library writes at exit\\n")
    time.sleep(2)  # ample time for ipykernel's pipe thread to wake, even on a loaded machine
    reset_io(app)
    stream.close()

IPKernelApp.reset_io = late_write"""


@pytest.mark.parametrize("course_kernel", [True, False])
def test_a_write_at_kernel_exit_is_printed_not_a_traceback(tmp_path, course_kernel):
    """With papermill's own kernel manager (course_kernel False) the same run prints ipykernel's
    traceback (ipython/ipykernel#1155): the check can fail. If that case fails, ipykernel no
    longer has the bug, and runner.KERNEL_ARGUMENTS may go."""
    source = tiny_notebook(tmp_path / "in.ipynb", LATE_WRITE)
    manager = "runner.kernel_manager_class()" if course_kernel else "AsyncKernelManager"
    done = python(f"import papermill\nfrom jupyter_client import AsyncKernelManager\n"
                  f"from census.course import runner\n"
                  f"papermill.execute_notebook({str(source)!r}, {str(tmp_path / 'out.ipynb')!r}, "
                  f"kernel_name='python3', progress_bar=False, kernel_manager_class={manager})",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("Event loop is closed" not in done.stderr) == course_kernel, done.stderr
    if course_kernel:
        assert "a C library writes at exit" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("course_kernel", [True, False])
def test_shutdown_sends_the_kernel_no_sigint(course_kernel):
    """jupyter_client interrupts a kernel before it asks it to shut down; a kernel handling a
    message then logs "ERROR | KeyboardInterrupt caught in kernel." (seen after chapter 4).
    The course's kernels are interrupted only when asked to; jupyter_client's own manager
    (course_kernel False) sends the second SIGINT: the check can fail."""
    import jupyter_client
    manager = runner.kernel_manager_class(sync=True) if course_kernel else \
        jupyter_client.KernelManager
    km, sent = manager(kernel_name="python3"), []
    send = km._async_signal_kernel

    async def recorded(signum):
        sent.append(signum)
        await send(signum)
    km._async_signal_kernel = recorded
    km.start_kernel(stderr=subprocess.DEVNULL)
    client = km.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        km.interrupt_kernel()
    finally:
        client.stop_channels()
        km.shutdown_kernel()
    assert sent == [signal.SIGINT] * (1 if course_kernel else 2)


def test_grading_runs_use_ipc_and_stderr_is_quiet(tmp_path):
    """`census exercises grade`: its worker processes start the kernels."""
    tiny_notebook(tmp_path / "class" / "alice" / "01_data.ipynb", REPORT)
    out_dir = tmp_path / "grading"  # nothing from an earlier run to pass on
    done = subprocess.run(
        [sys.executable, "-m", "census", "exercises", "grade", str(tmp_path / "class"),
         "--out-dir", str(out_dir), "--job-root", "jobs/test-kernels"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=outside_pytest())
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == "", done.stderr
    assert reported(out_dir / "alice" / "01_data.ipynb")["transport"] == "ipc"


@pytest.mark.parametrize("plugin", [True, False])
def test_nbval_runs_use_ipc_with_the_plugin(tmp_path, plugin):
    """tests/nbval_ipc.py gives nbval the IPC kernel manager; without it, nbval's kernels use
    TCP (so the check below can fail)."""
    tiny_notebook(tmp_path / "check.ipynb", REPORT.replace(
        "print(", "assert info['transport'] == 'ipc', info['transport']\nprint("))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p",
         "no:cacheprovider", *(["-p", "tests.nbval_ipc"] if plugin else []), "-q",
         "--rootdir", str(tmp_path), str(tmp_path / "check.ipynb")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) == plugin, done.stdout[-2000:]
    if not plugin:  # it failed at the check itself, not for another reason
        assert re.search(r"AssertionError\S*: tcp", done.stdout), done.stdout[-2000:]
