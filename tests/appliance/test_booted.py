"""The appliance for real: a booted Debian bookworm (systemd-nspawn) provisioned by the playbook over SSH.

One container per module: debootstrap root (cached) → fresh copy → boot → `ansible-playbook site.yml` twice
→ a simulated monitor recorded, uploaded to a real S3 server (rclone on the host loopback; the container
shares the host's network), the dashboard answering, the uploader's watchdog restarting a frozen process.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.appliance.conftest import ANSIBLE_DIR, SYSTEMD_DIR, VENV_BIN, need_root, need_tools
from tests.appliance.nspawn import Container, base_root, free_port, workdir
from tests.fixtures.s3 import S3Server

pytestmark = [pytest.mark.root, pytest.mark.slow]

BOX = "testbox"
BUCKET = "lab-recordings"
PREFIX = "sensor-box"
SIM_LINK_DIR = "/run/monitor-sim"


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Box:
    """The provisioned container and what the test set up around it."""

    container: Container
    s3: S3Server
    inventory: Path
    vault_password: Path
    web_port: int
    first_run: str

    def playbook(self) -> str:
        """Run site.yml against the box; return its output (asserting success)."""
        env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_HOST_KEY_CHECKING": "False", "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        proc = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), "--vault-password-file",
             str(self.vault_password), "site.yml"],
            cwd=ANSIBLE_DIR, env=env, check=False, capture_output=True, text=True, timeout=900,
        )
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        return proc.stdout


def recap(output: str) -> dict[str, int]:
    """The PLAY RECAP counters of the box."""
    m = re.search(rf"^{BOX}\s+:\s+(.*)$", output, re.MULTILINE)
    assert m, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def write_inventory(folder: Path, container: Container, s3: S3Server, wheelhouse: Path, web_port: int) -> Path:
    """An inventory like the example one: settings in group_vars, secrets in an ansible-vault file."""
    hosts = {"sensor_boxes": {"hosts": {BOX: {
        "ansible_host": "127.0.0.1", "ansible_port": container.ssh_port, "ansible_user": "root",
        "ansible_ssh_private_key_file": str(container.key), "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }}}}
    group_vars = folder / "group_vars" / "sensor_boxes"
    group_vars.mkdir(parents=True)
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (group_vars / "vars.yml").write_text(yaml.safe_dump({
        "common_wheelhouse_dir": str(wheelhouse),
        "uploader_s3_bucket": BUCKET,
        "uploader_s3_prefix": PREFIX,
        "uploader_s3_endpoint_url": s3.endpoint_url,
        "uploader_s3_access_key_id": "{{ vault_uploader_s3_access_key_id }}",
        "uploader_s3_secret_access_key": "{{ vault_uploader_s3_secret_access_key }}",
        # Short timings so the test sees batches, uploads and a watchdog kill within seconds.
        "uploader_watchdog_sec": 10,
        "uploader_env": {"SENSOR_UPLOAD_INTERVAL": 1},
        "reader_batch_seconds": 2,
        # The container shares the host's network: a free loopback port, not the lab-wide 0.0.0.0:8000.
        "web_bind": "127.0.0.1",
        "web_port": web_port,
        "web_users": [{"name": "lab", "password": "{{ vault_web_lab_password }}"}],
    }))
    vault = group_vars / "vault.yml"
    vault.write_text(yaml.safe_dump({
        "vault_uploader_s3_access_key_id": s3.access_key,
        "vault_uploader_s3_secret_access_key": s3.secret_key,
        "vault_web_lab_password": secrets.token_urlsafe(12),
    }))
    password = folder / "vault-password"
    password.write_text(secrets.token_urlsafe(16) + "\n")
    subprocess.run([str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)],
                   check=True, capture_output=True, timeout=60)
    assert vault.read_text().startswith("$ANSIBLE_VAULT")
    return folder / "hosts.yml"


def build_wheelhouse() -> Path:
    """The documented pre-step (ansible/build-wheelhouse.sh), into a cache folder outside the repo."""
    out = Path(os.environ.get("SENSOR_BOX_TEST_CACHE", "/var/cache/sensor-box-test")) / "wheelhouse"
    subprocess.run([str(ANSIBLE_DIR / "build-wheelhouse.sh"), str(out)], check=True, capture_output=True,
                   timeout=600, env={**os.environ, "PIP": str(VENV_BIN / "pip")})
    return out


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    """A booted, provisioned box (module scope: every test below inspects the same one)."""
    need_root()
    need_tools("debootstrap", "systemd-nspawn", "ssh", "ssh-keygen", "ansible-playbook", "rclone")
    base = base_root()
    wheelhouse = build_wheelhouse()
    tmp = tmp_path_factory.mktemp("box")
    s3_root = tmp / "s3"
    (s3_root / BUCKET).mkdir(parents=True)
    s3 = S3Server(root=s3_root, port=free_port(), access_key=f"box{secrets.token_hex(4)}",
                  secret_key=secrets.token_hex(16), log_path=tmp / "rclone.log")
    s3.start()
    container = Container(workdir())
    try:
        container.prepare(base, BOX)
        container.boot()
        web_port = free_port()
        inventory = write_inventory(tmp / "inventory", container, s3, wheelhouse, web_port)
        box = Box(container, s3, inventory, tmp / "inventory" / "vault-password", web_port, "")
        box.first_run = box.playbook()
        yield box
    finally:
        try:
            journal = container.sh("journalctl --no-pager -n 300", check=False, timeout=30)
            (tmp / "journal.txt").write_text(journal)
        except (OSError, subprocess.SubprocessError):
            pass
        container.shutdown()
        shutil.rmtree(container.workdir, ignore_errors=True)
        s3.stop()


def test_first_run_provisions(box: Box) -> None:
    """The first run changes things, fails nothing, and leaves the services active."""
    counts = recap(box.first_run)
    assert counts["changed"] > 10 and counts["failed"] == 0 and counts["unreachable"] == 0
    states = box.container.sh("systemctl is-active sensor.target sensor-uploader.service sensor-web.service")
    assert states.split() == ["active"] * 3
    assert box.container.sh("systemctl is-enabled sensor.target").strip() == "enabled"
    assert "dialout" in box.container.sh("id -nG sensor").split()
    assert box.container.sh("stat -c '%a %U:%G' /etc/sensor/sensor.env").strip() == "640 root:sensor"


def test_second_run_changes_nothing(box: Box) -> None:
    """Idempotent: re-running the playbook reports changed=0 and keeps the per-box secrets."""
    secrets_before = box.container.sh("cat /etc/sensor/ingest-token /etc/sensor/web-secret-key")
    counts = recap(box.playbook())
    assert counts["changed"] == 0 and counts["failed"] == 0, counts
    assert box.container.sh("cat /etc/sensor/ingest-token /etc/sensor/web-secret-key") == secrets_before


def test_dashboard_answers(box: Box) -> None:
    """Daphne answers over HTTP from the host; with login required, / leads to a working login page."""
    url = f"http://127.0.0.1:{box.web_port}/"
    with urllib.request.urlopen(url, timeout=10) as resp:  # redirects to the login page
        body = resp.read().decode()
        assert resp.status == 200
        assert "/accounts/login/" in resp.url
    assert 'name="username"' in body and 'name="password"' in body
    assert box.container.sh("systemctl show -p Type --value sensor-web").strip() == "notify"


def pty_reader_unit() -> str:
    """sensor-reader@.service adapted to a pty: no device to bind to, the pty group allowed instead.

    A pty has no udev device (and udevd does not run in a container), so `BindsTo=dev-%i.device` could
    never be satisfied; dependencies cannot be reset from a drop-in, hence a derived template. Everything
    else (user, hardening, Type=notify, watchdog, environment files) is the packaged unit verbatim.
    """
    out = []
    for line in (SYSTEMD_DIR / "sensor-reader@.service").read_text().splitlines():
        if line.startswith("BindsTo="):
            continue
        line = line.replace("After=dev-%i.device ", "After=")
        line = line.replace("--port /dev/%i", f"--port {SIM_LINK_DIR}/%i")
        line = line.replace("DeviceAllow=/dev/%i rw", "DeviceAllow=char-pts rw")
        out.append(line)
    text = "\n".join(out) + "\n"
    assert "\nBindsTo=" not in text and f"--port {SIM_LINK_DIR}/%i" in text and "char-pts" in text
    return text


def test_monitor_recorded_and_uploaded(box: Box) -> None:
    """A simulated monitor on a pty → reader instance → committed batches → objects in S3."""
    c = box.container
    c.sh("cat > /etc/systemd/system/sensor-reader-pty@.service", stdin=pty_reader_unit())
    c.sh("mkdir -p /etc/systemd/system/sensor-reader-pty@.service.d && cp "
         "/etc/systemd/system/sensor-reader@.service.d/10-site.conf /etc/systemd/system/sensor-reader-pty@.service.d/"
         " && systemctl daemon-reload")
    # The simulator runs as the sensor user so that the pty it opens belongs to that user.
    c.sh(f"systemd-run --unit=monitor-sim -p User=sensor -p Group=sensor -p RuntimeDirectory={SIM_LINK_DIR[5:]} "
         f"-p RuntimeDirectoryMode=0755 /opt/sensor/venv/bin/sensor-sim --link {SIM_LINK_DIR}/sim0 "
         "--channels 4 --rate 200 --header")
    wait_until(lambda: c.sh(f"test -L {SIM_LINK_DIR}/sim0 && echo yes", check=False).strip() == "yes", 30,
               "the simulator's pty link")
    c.sh("systemctl start sensor-reader-pty@sim0.service")  # Type=notify: returns once READY=1 was sent
    assert c.sh("systemctl is-active sensor-reader-pty@sim0.service").strip() == "active"

    batches = wait_until(lambda: c.sh("ls /var/lib/sensor/sim0/*/batch-*.csv 2>/dev/null", check=False).split(),
                         60, "committed batches on the box")
    assert batches[0].endswith("batch-000001.csv")
    header = c.sh(f"head -1 {batches[0]}").strip()
    assert header.startswith("host_time,")

    def uploaded() -> list[str]:
        prefix = f"{PREFIX}/{BOX}/sim0/"
        return [k for k in box.s3.objects(BUCKET) if k.startswith(prefix) and k.endswith("batch-000001.parquet")]

    keys = wait_until(uploaded, 120, "the first batch in S3")
    session = batches[0].split("/")[-2]
    assert keys == [f"{PREFIX}/{BOX}/sim0/{session}/batch-000001.parquet"]
    status = c.sh("cat /var/lib/sensor/.status/reader-sim0.json")
    assert '"' in status  # the reader publishes its health for the dashboard


def test_frozen_uploader_restarted_by_watchdog(box: Box) -> None:
    """A SIGSTOPped uploader stops sending WATCHDOG=1: systemd kills it and starts a new one."""
    c = box.container
    show = "systemctl show -p MainPID -p NRestarts -p ActiveState --value sensor-uploader.service"
    wait_until(lambda: c.sh(show).split()[-1:] == ["active"], 60, "an active uploader")
    pid, restarts, _ = c.sh(show).split()
    assert int(pid) > 0
    c.sh(f"kill -STOP {pid}")
    started = time.monotonic()

    def restarted() -> bool:
        new_pid, new_restarts, state = c.sh(show).split()
        return new_pid not in ("0", pid) and int(new_restarts) > int(restarts) and state == "active"

    wait_until(restarted, 90, "the watchdog to restart the uploader")
    elapsed = time.monotonic() - started
    journal = c.sh("journalctl -u sensor-uploader.service --no-pager -n 200")
    assert "Watchdog timeout" in journal
    assert elapsed >= 5, f"restarted after {elapsed:.1f}s: faster than the 10 s watchdog allows"
