"""A booted Debian bookworm for the appliance test: a cached debootstrap root, booted with systemd-nspawn.

The root is a bare bookworm as a Raspberry Pi OS image starts out (systemd, python3, sshd): the playbook
installs the rest with apt. With a :class:`~tests.appliance.network.LabNetwork` the container has its own
network namespace and address (SSH on port 22 there); without one it shares the host's loopback.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.appliance.network import LabNetwork

CACHE = Path(os.environ.get("SENSOR_BOX_TEST_CACHE", "/var/cache/sensor-box-test"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# No python3-venv: the playbook's apt step installs it (through the test's apt proxy).
PACKAGES = ["systemd", "systemd-sysv", "dbus", "python3", "udev", "openssh-server", "sudo"]
RECIPE = 2  # bump when the way the root is built changes


def base_root() -> Path:
    """The debootstrap root for the package list, built once (1-2 min) and cached under CACHE."""
    spec = json.dumps({"suite": SUITE, "variant": "minbase", "packages": sorted(PACKAGES), "recipe": RECIPE})
    root = CACHE / f"{SUITE}-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two suites at once build it once
        if not (root / ".complete").exists():
            staging = root.with_name(root.name + ".building")
            shutil.rmtree(staging, ignore_errors=True)
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(staging), MIRROR],
                check=True, capture_output=True, timeout=900,
            )
            shutil.rmtree(root, ignore_errors=True)
            staging.rename(root)
            (root / ".complete").write_text(spec + "\n")
    return root


def free_port() -> int:
    """A loopback TCP port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Container:
    """A throw-away copy of the base root booted with systemd as PID 1, reachable over SSH on loopback."""

    def __init__(self, workdir: Path, network: LabNetwork | None = None) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.key = workdir / "id_ed25519"
        self.network = network
        self.ssh_host = network.box_ip if network else "127.0.0.1"
        self.ssh_port = 22 if network else free_port()
        self.log = workdir / "nspawn.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def prepare(self, base: Path, hostname: str, apt_proxy: str | None = None) -> None:
        """Copy the base root; configure sshd (our key, its address), the host name and apt's proxy."""
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(self.root)], check=True, timeout=300)
        if apt_proxy:
            (self.root / "etc/apt/apt.conf.d/01proxy").write_text(f'Acquire::http::Proxy "{apt_proxy}";\n')
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        ssh_dir = self.root / "root" / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copyfile(self.key.with_suffix(".pub"), ssh_dir / "authorized_keys")
        (self.root / "etc/ssh/sshd_config.d/test.conf").write_text(
            f"Port {self.ssh_port}\nListenAddress {self.ssh_host}\nPasswordAuthentication no\n"
        )
        (self.root / "etc/hostname").write_text(hostname + "\n")

    def boot(self, timeout: float = 120) -> None:
        """Boot it detached and wait until systemd reports the system up and sshd answers."""
        net = [f"--network-namespace-path={self.network.netns_path}"] if self.network else []
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.root), "-b", "--register=no", "--keep-unit",
                 "--console=passive", "-M", self.root.parent.name[:60], *net],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"nspawn exited: {self.log.read_text()[-3000:]}"
            proc = subprocess.run(self.ssh_argv("systemctl is-system-running"), check=False, capture_output=True, text=True,
                                  timeout=30)
            state = proc.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise TimeoutError(f"container not up after {timeout}s (state {state!r}): {self.log.read_text()[-3000:]}")

    def ssh_argv(self, command: str) -> list[str]:
        """The ssh command line running a shell command as root inside."""
        return ["ssh", "-i", str(self.key), "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=5", f"root@{self.ssh_host}", command]

    def sh(self, command: str, check: bool = True, stdin: str | None = None, timeout: float = 120) -> str:
        """Run a shell command inside over SSH; return its stdout."""
        proc = subprocess.run(self.ssh_argv(command), input=stdin, check=False, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{command!r} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def poweroff(self, timeout: float = 60) -> None:
        """`systemctl poweroff` inside and wait for nspawn to exit (the root is kept, to boot again)."""
        assert self.proc is not None
        subprocess.run(self.ssh_argv("systemctl poweroff"), check=False, capture_output=True, timeout=30)
        self.proc.wait(timeout=timeout)
        self.proc = None

    def shutdown(self) -> None:
        """Stop the container (SIGTERM asks its systemd to power off; SIGKILL after 30 s) and delete it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def workdir() -> Path:
    """A fresh folder for one container, outside the repository.

    Its name becomes the machine name, which allows only letters, digits and ``-``: mkdtemp's random
    suffix may hold ``_``, so the name is made here.
    """
    base = Path("/var/tmp/sensor-box-test")
    base.mkdir(parents=True, exist_ok=True)
    while True:
        path = base / f"box-{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return path
