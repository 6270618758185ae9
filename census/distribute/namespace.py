"""A loopback-only network namespace for a local cluster (chapter 7), as root or not.

TF's gRPC servers listen on every network interface, whatever TF_CONFIG says, so a local
cluster's tasks run inside one namespace whose only interface is loopback: nothing outside
this machine can reach them. Root makes a plain one (`unshare --net`); an ordinary user makes
one inside a user namespace of its own (`unshare --user --map-root-user --net`, which Linux
allows without privileges), and each task joins both with `nsenter`. Where none can be made
(macOS, Windows, a locked-down container) `Namespace` says so in one sentence;
`CENSUS_NETNS=off` makes it act as there, to rehearse that case. Ubuntu 24.04 and later
restrict an ordinary user's user namespaces (AppArmor, sysctl
kernel.apparmor_restrict_unprivileged_userns=1): `unshare` or the loopback ioctl then fails
with EPERM, and the sentence names that restriction and the ways out.
"""
import errno
import os
import subprocess
import sys


class NamespaceError(Exception):
    """No loopback-only network namespace can be made here; the message says why."""


NETNS_SWITCH = "CENSUS_NETNS"  # "off": act as if no network namespace could be made


# A namespace's first process: brings the loopback interface up (ioctl SIOCSIFFLAGS, so that
# no `ip` command is needed), says so, and lives until the launcher closes its stdin.
_HOLDER = r"""
import fcntl, socket, struct, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
print("ready", flush=True)
sys.stdin.read()
"""


def netns_commands():
    """(the `unshare` command that makes the namespace, the `nsenter` flags that join it).

    Root keeps its full rights in a plain network namespace. An ordinary user gets one owned
    by a user namespace of its own, and a task must join both (`nsenter --net` alone is
    refused: "reassociate to namespace 'ns/net' failed: Operation not permitted")."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ("unshare", "--net"), ("--net",)
    return (("unshare", "--user", "--map-root-user", "--net"),
            ("--user", "--net", "--preserve-credentials"))


# What `unshare` or the holder prints when the kernel refuses: EPERM ("write failed
# /proc/self/uid_map: Operation not permitted", the ioctl's PermissionError), or EACCES
# ("unshare failed: Permission denied", AppArmor without its unprivileged_userns profile).
_REFUSED = (os.strerror(errno.EPERM), os.strerror(errno.EACCES))
RESTRICT_SYSCTL = "kernel.apparmor_restrict_unprivileged_userns"


def _why(unshare, err):
    """The one sentence NamespaceError says: `unshare` (argv) failed with `err` (its last
    line of error output)."""
    failed = f"cannot create a loopback-only network namespace with `{' '.join(unshare)}` ({err})"
    if "--user" in unshare and any(refused in err for refused in _REFUSED):
        return (f"{failed}: this system does not let an ordinary user set one up (Ubuntu 24.04 "
                f"and later restrict user namespaces by default, {RESTRICT_SYSCTL}=1), so "
                f"lift that until the next reboot with `sudo sysctl -w {RESTRICT_SYSCTL}=0`, run "
                "as root, or pass --allow-host-network, which leaves the task ports open on "
                "all this machine's network interfaces for as long as the cluster runs.")
    return (f"{failed}; TF's gRPC servers listen on every network interface, so a local "
            "cluster runs inside one. Pass --allow-host-network to run on this machine's "
            "network instead: the task ports are then open on all its interfaces for as long "
            "as the cluster runs.")


class Namespace:
    """A loopback-only network namespace, held by one small process; `wrap(argv)` runs a
    command inside it. `commands`: (unshare argv, nsenter flags), default `netns_commands()`.
    Raises NamespaceError, in one sentence, where none can be made."""

    def __init__(self, commands=None):
        unshare, self.join = commands or netns_commands()
        err = None
        if os.environ.get(NETNS_SWITCH) == "off":
            self.proc, err = None, f"{NETNS_SWITCH}=off"
        else:
            try:
                self.proc = subprocess.Popen([*unshare, sys.executable, "-c", _HOLDER],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)
            except OSError as e:  # no `unshare` (macOS, Windows)
                self.proc, err = None, e.strerror or str(e)
        if self.proc and self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            stderr = self.proc.communicate()[1]
            err = (stderr.strip().splitlines() or [f"exit status {self.proc.returncode}"])[-1]
            self.proc = None
        if err:
            raise NamespaceError(_why(unshare, err))

    def wrap(self, argv):
        """`argv` to run inside the namespace (`nsenter … -- argv`)."""
        return ["nsenter", "-t", str(self.proc.pid), *self.join, "--", *argv]

    def stop(self):
        """End the holder process: the namespace goes once no task is in it."""
        if self.proc:
            self.proc.kill()
            self.proc.communicate()


def private_network_possible():
    """Whether `census cluster` can isolate its tasks here (it makes and drops a namespace)."""
    try:
        Namespace().stop()
        return True
    except NamespaceError:
        return False
