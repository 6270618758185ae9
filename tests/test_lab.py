"""`make lab` (learners: nbgrader's extensions off) and `make lab-instructor` (on): the real
`census course lab` server on 127.0.0.1, a random port and a token, asked through its API;
its kernels run over Unix sockets. Each server is stopped whatever happens."""
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from census.course import cli, environment
from census.processes import free_port

pytestmark = pytest.mark.slow  # JupyterLab servers

REPO = environment.root()
STARTUP_SECONDS = 90


class Lab:
    """`census course lab [--instructor]` in a subprocess, its Jupyter folders in tmp_path,
    its log in tmp_path/lab.log; `get(path)` returns (status, text)."""

    def __init__(self, tmp_path, instructor):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "lab.log"
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
                   JUPYTER_DATA_DIR=str(tmp_path / "data"), IPYTHONDIR=str(tmp_path / "ipython"))
        command = [sys.executable, "-m", "census", "course", "lab", "--port", str(self.port),
                   *(["--instructor"] if instructor else []), "--", "--no-browser",
                   f"--IdentityProvider.token={self.token}",
                   "--ServerApp.port_retries=0",  # its port or none: no silent move
                   "--ServerApp.shutdown_no_activity_timeout=120",  # stops if left behind
                   "--MappingKernelManager.cull_idle_timeout=60"]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def get(self, path, data=None):
        request = urllib.request.Request(self.base + path, data=data,
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""

    def wait(self):
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}: {self.log()}")
            try:
                if self.get("/api/status")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"no answer from {self.base} within {STARTUP_SECONDS} s")

    def log(self):
        return self.log_path.read_text()[-3000:]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module", params=[False, True], ids=["learner", "instructor"])
def lab(request, tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("lab"), instructor=request.param)
    try:
        yield server.wait(), request.param
    finally:
        server.stop()


def page_config(server):
    """The JupyterLab page's configuration (the JSON the front end starts from)."""
    status, page = server.get("/lab")
    assert status == 200
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                      page, re.S)
    return json.loads(found.group(1))


async def execute(server, kernel_id, code, seconds=60):
    """Run `code` in a kernel through the server's websocket; returns what it printed."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect
    url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels"
    socket_ = await websocket_connect(HTTPRequest(
        url, headers={"Authorization": f"token {server.token}"}))
    msg_id = uuid.uuid4().hex
    socket_.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False}}))

    async def printed():
        while True:
            message = json.loads(await socket_.read_message())
            if (message.get("parent_header", {}).get("msg_id") == msg_id
                    and message["msg_type"] == "stream"):
                return message["content"]["text"]
    try:
        return await asyncio.wait_for(printed(), seconds)
    finally:
        socket_.close()


def test_nbgrader_is_for_instructors_only(lab):
    server, instructor = lab
    config = page_config(server)
    assert cli.NBGRADER_LAB_EXTENSION in {e["name"] for e in config["federated_extensions"]}
    disabled = set(config["disabledExtensions"])
    assert (cli.NBGRADER_LAB_EXTENSION in disabled) == (not instructor), disabled
    # nbgrader's server side: its version handler, the formgrader page
    for path in ("/nbgrader_version?version=0", "/formgrader"):
        assert server.get(path)[0] == (200 if instructor else 404), path


def test_no_jupyter_news_prompt_for_learners(lab):
    """The learners' server defaults `fetchNews` to "false" (no "Would you like to get notified
    about official Jupyter news?"), through the learner config only; the instructors' keeps
    JupyterLab's own default, "none" (ask)."""
    server, instructor = lab
    plugin, name, value = cli.NEWS_SETTING
    written = json.loads((cli.learner_config() / "labconfig" /
                          "default_setting_overrides.json").read_text())
    assert written[plugin] == {name: value}
    status, body = server.get(f"/lab/api/settings/{plugin}")
    assert status == 200, server.log()
    default = json.loads(body)["schema"]["properties"][name]["default"]
    assert default == ("none" if instructor else value)


def test_lab_kernels_run_over_ipc(lab):
    server, _ = lab
    status, body = server.get("/api/kernels", data=b"{}")
    assert status == 201, server.log()
    kernel = json.loads(body)["id"]
    code = ("from ipykernel import get_connection_info\n"
            "print(get_connection_info(unpack=True)['transport'])")
    assert asyncio.run(execute(server, kernel, code)).strip() == "ipc"
    assert "Kernel is running over TCP" not in server.log()


@pytest.mark.parametrize("extra", [(), ("--port", "9999"), ("--ServerApp.port=9999",),
                                   ("--ip=127.0.0.2", "--ServerApp.root_dir=/srv/course")])
def test_jupyter_options_replace_the_labs_defaults(extra):
    """`make lab LAB_FLAGS="--port 9999"` (options after `--`): each option given replaces the
    command's own, which Jupyter would otherwise refuse as two values for one setting."""
    command = cli.lab_command(8888, list(extra))
    for setting in ("port", "ip", "root_dir", "default_url"):
        values = [o for o in command if o.split("=", 1)[0] in (f"--{setting}",
                                                               f"--ServerApp.{setting}")]
        assert len(values) == 1, (setting, command)
    assert ("--ServerApp.port=8888" in command) == (not any("port" in o for o in extra))
    assert command[len(command) - len(extra):] == list(extra)  # passed on as given
