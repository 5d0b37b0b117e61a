"""The box's lab network for the acceptance test: a network namespace joined to the host by a veth pair.

The host side gets ``.1`` of a private /24 chosen for the test, the box ``.2``; the box reaches only the
host (no route elsewhere). An apt-cacher-ng on the host side is the box's way to Debian's packages,
as a lab's package mirror or proxy would be.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path


def _ip(*args: str) -> None:
    """Run `ip ARGS`, failing with its message."""
    proc = subprocess.run(["ip", *args], check=False, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


class LabNetwork:
    """A network namespace for the box and a veth pair to the host, with addresses on a private /24."""

    def __init__(self, name: str) -> None:
        self.name = name[:12]
        self.host_link = f"sbh-{self.name}"[:15]
        used = subprocess.run(["ip", "-4", "-o", "addr"], check=True, capture_output=True, text=True).stdout
        while True:
            octet = random.randint(16, 250)
            prefix = f"10.213.{octet}."
            if prefix not in used:
                break
        self.host_ip = prefix + "1"
        self.box_ip = prefix + "2"

    @property
    def netns_path(self) -> str:
        """The namespace's file, for systemd-nspawn --network-namespace-path."""
        return f"/run/netns/{self.name}"

    def create(self) -> None:
        """Make the namespace and the veth pair, address both ends and bring them up."""
        _ip("netns", "add", self.name)
        _ip("link", "add", self.host_link, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self.host_link)
        _ip("link", "set", self.host_link, "up")
        _ip("-n", self.name, "addr", "add", f"{self.box_ip}/24", "dev", "eth0")
        _ip("-n", self.name, "link", "set", "eth0", "up")
        _ip("-n", self.name, "link", "set", "lo", "up")

    def destroy(self) -> None:
        """Remove the namespace (its end of the pair goes with it, and so does the host's)."""
        subprocess.run(["ip", "link", "del", self.host_link], check=False, capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True, timeout=30)


def wait_listening(host: str, port: int, timeout: float) -> None:
    """Return once a TCP connect to host:port succeeds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.1)


class AptProxy:
    """apt-cacher-ng on the host side of the lab network: the box's way to Debian's package mirror."""

    PORT = 3142

    def __init__(self, address: str, cache: Path, workdir: Path) -> None:
        self.address = address
        self.cache = cache
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The proxy's URL for apt's Acquire::http::Proxy."""
        return f"http://{self.address}:{self.PORT}"

    def start(self) -> None:
        """Start it in the foreground with a minimal configuration (no mirror remapping) and a kept cache."""
        conf = self.workdir / "acng"
        for folder in (conf, self.cache, self.workdir / "acng-log"):
            folder.mkdir(parents=True, exist_ok=True)
        (conf / "acng.conf").write_text(
            f"CacheDir: {self.cache}\nLogDir: {self.workdir / 'acng-log'}\nSupportDir: /usr/lib/apt-cacher-ng\n"
            "ExThreshold: 4\n"
        )
        log = open(self.workdir / "apt-cacher-ng.out", "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            ["apt-cacher-ng", "-c", str(conf), "ForeGround=1", f"Port={self.PORT}", f"BindAddress={self.address}",
             f"PidFile={self.workdir / 'acng.pid'}", f"SocketPath={self.workdir / 'acng.socket'}"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        wait_listening(self.address, self.PORT, 15)

    def stop(self) -> None:
        """Stop it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
