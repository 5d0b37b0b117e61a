"""The box as shipped, end to end: bare Debian → the manual's provisioning → a researcher's plot.

One booted Debian bookworm (systemd-nspawn) per module, in its own network namespace with its own lab
address (a veth pair to the host). It starts bare, as a Raspberry Pi OS image does (systemd, python3,
sshd); the playbook's apt step installs the rest through an apt proxy on the host side. The inventory
and vault are made exactly as the "Provisioning" steps of docs/appliance.md say, and `ansible-playbook site.yml`
(which builds the wheelhouse from the checked-out commit) provisions it. Then, in order:
a simulated adapter on a pty is recorded by its `sensor-reader@ttyUSB0` instance; Chromium on the host
logs in to the dashboard at the box's lab address and sees the chart move; the batches reach a real S3
server on the host and `sensor-analysis plot s3://…` draws them; unplug and replug give two closed
sessions with no watchdog kill; a second run and a wheelhouse rebuild change nothing; the footprint is
measured; an upgrade to a new commit while recording does not split the session; a frozen uploader is
restarted by its watchdog; after a reboot every service is back. Figures are printed at the end.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.appliance.conftest import ANSIBLE_DIR, REPO, VENV_BIN, need_root, need_tools
from tests.appliance.network import AptProxy, LabNetwork, wait_listening
from tests.appliance.nspawn import CACHE, Container, base_root, free_port, workdir
from tests.fixtures.s3 import S3Server
from tests.support import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

BOX = "testbox"
BUCKET = "lab-recordings"
PREFIX = "sensor-box"
DEVICE = "ttyUSB0"
SIM_DIR = "/run/sensor-sim"
CHANNELS, RATE = 8, 1000
ARTIFACTS = REPO / "test-artifacts"
SERVICES = ["sensor-uploader.service", "sensor-web.service"]
READER = f"sensor-reader@{DEVICE}.service"
USER = "labrec"  # the service account the test's inventory chooses instead of the default "sensor"


@dataclass
class Box:
    """The booted container, what surrounds it on the host, and the figures gathered on the way."""

    container: Container
    network: LabNetwork
    s3: S3Server
    inventory: Path
    vault_password: Path
    lab_password: str
    tmp: Path
    figures: dict[str, Any] = field(default_factory=dict)
    first_run: str = ""
    runs: int = 0

    @property
    def url(self) -> str:
        """The dashboard at the box's lab address."""
        return f"http://{self.network.box_ip}:8000"

    def sh(self, command: str, **kwargs: Any) -> str:
        """A shell command on the box, as root."""
        return self.container.sh(command, **kwargs)

    def playbook(self, repo: Path = REPO) -> str:
        """`ansible-playbook site.yml` from a checkout's ansible/ folder, as docs/appliance.md says; asserts success."""
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "False",
               "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
        env.pop("ANSIBLE_CONFIG", None)  # ansible/ansible.cfg applies, found in the working folder
        proc = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), "--vault-password-file",
             str(self.vault_password), "site.yml"],
            cwd=repo / "ansible", env=env, check=False, capture_output=True, text=True, timeout=900,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        self.runs += 1
        (ARTIFACTS / f"appliance-playbook-{self.runs}.txt").write_text(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        return proc.stdout

    def unit(self, name: str) -> dict[str, str]:
        """A few properties of a unit on the box."""
        text = self.sh(f"systemctl show -p MainPID -p NRestarts -p ActiveState -p Result {name}")
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def sessions(self) -> list[dict[str, Any]]:
        """Every session.json of the simulated adapter, oldest first."""
        script = ("import glob, json; print(json.dumps([json.load(open(f)) for f in "
                  f"sorted(glob.glob('/var/lib/sensor/{DEVICE}/*/session.json'))]))")
        return sorted(json.loads(self.sh(f'python3 -c "{script}"')), key=lambda s: s["session_id"])

    def sim(self, command: str) -> None:
        """A control command to the simulated adapter (unplug, replug, ...)."""
        self.sh(f"echo {command} > {SIM_DIR}/ctl")


def recap(output: str) -> dict[str, int]:
    """The PLAY RECAP counters of the box."""
    m = re.search(rf"^{BOX}\s+:\s+(.*)$", output, re.MULTILINE)
    assert m, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def readme_inventory(folder: Path, box: Container, network: LabNetwork, s3: S3Server) -> tuple[Path, Path, str]:
    """docs/appliance.md's steps 1-2: copy the example inventory, list the box, set the settings, vault the secrets."""
    shutil.copytree(ANSIBLE_DIR / "inventory" / "example", folder)
    group_vars = folder / "group_vars" / "sensor_boxes"
    (folder / "hosts.yml").write_text(yaml.safe_dump({"sensor_boxes": {
        "hosts": {BOX: {"ansible_host": network.box_ip}},
        "vars": {"ansible_user": "root", "ansible_ssh_private_key_file": str(box.key),
                 "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"},
    }}))
    settings = yaml.safe_load((group_vars / "vars.yml").read_text())
    settings.update({
        "uploader_s3_bucket": BUCKET,
        "uploader_s3_prefix": PREFIX,
        "uploader_s3_endpoint_url": s3.endpoint_url,
        # The dashboard on the box's lab address (not every address): probes and the reader follow it.
        "common_web_bind": network.box_ip,
        # Not the default service account: the roles' templated units follow it.
        "common_user": USER,
        "common_group": USER,
        # A container has no udev, so no device units: the reader sees unplugs itself.
        "reader_bind_to_device": False,
        # Short timings, so the test sees batches, uploads and watchdog periods within seconds.
        "reader_batch_seconds": 2,
        "reader_watchdog_sec": 10,
        "reader_env": {"SENSOR_SEQ": 1},
        "uploader_watchdog_sec": 10,
        "uploader_env": {"SENSOR_UPLOAD_INTERVAL": 1},
    })
    (group_vars / "vars.yml").write_text(yaml.safe_dump(settings))
    example = yaml.safe_load((group_vars / "vault.yml.example").read_text())
    vault_values = {name: secrets.token_urlsafe(12) for name in example}
    vault_values.update({"vault_uploader_s3_access_key_id": s3.access_key,
                         "vault_uploader_s3_secret_access_key": s3.secret_key})
    vault = group_vars / "vault.yml"
    vault.write_text(yaml.safe_dump(vault_values))
    password = folder.parent / "vault-password"
    password.write_text(secrets.token_urlsafe(16) + "\n")
    subprocess.run([str(VENV_BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)],
                   check=True, capture_output=True, timeout=60)
    assert vault.read_text().startswith("$ANSIBLE_VAULT")
    return folder / "hosts.yml", password, vault_values["vault_web_lab_password"]


def plug_in_simulated_adapter(box: Box) -> None:
    """A simulated monitor on a pty at /dev/ttyUSB0, and its reader started as udev would start it.

    The simulator runs as the service user so the pty is the reader's to open; /dev/ttyUSB0 links to its
    stable link. The reader is the packaged `sensor-reader@` instance; the test's drop-in only lets its
    device cgroup open ptys (a pty is not the /dev/ttyUSB0 node that `DeviceAllow=/dev/%i` names).
    """
    box.sh("mkdir -p /etc/systemd/system/sensor-reader@.service.d && printf '[Service]\\nDeviceAllow=char-pts rw\\n'"
           " > /etc/systemd/system/sensor-reader@.service.d/50-test-pty.conf && systemctl daemon-reload")
    box.sh(f"systemd-run --unit=monitor-sim -p User={USER} -p Group={USER} -p RuntimeDirectory={SIM_DIR[5:]} "
           f"-p RuntimeDirectoryMode=0755 /opt/sensor/venv/bin/sensor-sim --link {SIM_DIR}/{DEVICE} "
           f"--control {SIM_DIR}/ctl --channels {CHANNELS} --rate {RATE} --seq --header --waveform mixed")
    wait_for(lambda: box.sh(f"test -p {SIM_DIR}/ctl && test -L {SIM_DIR}/{DEVICE} && echo y", check=False).strip(),
             30, "the simulated adapter", interval=0.3)
    box.sh(f"ln -sfn {SIM_DIR}/{DEVICE} /dev/{DEVICE}")
    box.sh(f"systemctl start {READER}")  # Type=notify: returns once READY=1 was sent


def first_batch(box: Box) -> str:
    """The path of a committed batch of the simulated adapter, once there is one."""
    return wait_for(lambda: box.sh(f"ls /var/lib/sensor/{DEVICE}/*/batch-*.csv 2>/dev/null | head -1",
                                   check=False).strip(), 60, "a committed batch on the box", interval=0.3)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    """A bare Debian booted on its lab network and provisioned by docs/appliance.md's steps, recording."""
    need_root()
    need_tools("debootstrap", "systemd-nspawn", "ssh", "ssh-keygen", "ansible-playbook", "rclone", "apt-cacher-ng",
               "ip", "npm", "git")
    base = base_root()
    tmp = tmp_path_factory.mktemp("box")
    folder = workdir()
    network = LabNetwork(folder.name)
    proxy = AptProxy(network.host_ip, CACHE / "apt-cacher-ng", tmp)
    s3_root = tmp / "s3"
    (s3_root / BUCKET).mkdir(parents=True)
    s3 = S3Server(root=s3_root, port=free_port(), access_key=f"box{secrets.token_hex(4)}",
                  secret_key=secrets.token_hex(16), log_path=tmp / "rclone.log", host=network.host_ip)
    container = Container(folder, network)
    try:
        network.create()
        proxy.start()
        s3.start()
        container.prepare(base, BOX, apt_proxy=proxy.url)
        container.boot()
        inventory, password, lab_password = readme_inventory(tmp / "lab-inventory", container, network, s3)
        box = Box(container, network, s3, inventory, password, lab_password, tmp)
        venv_pkg = box.sh("dpkg-query -W -f '${Status}' python3-venv 2>/dev/null; true")
        assert venv_pkg != "install ok installed", "the root is not bare"
        started = time.monotonic()
        box.first_run = box.playbook()
        box.figures["playbook, bare Debian → services up (s)"] = round(time.monotonic() - started, 1)
        plug_in_simulated_adapter(box)
        first_batch(box)
        box.figures["bare Debian → first batch committed (s)"] = round(time.monotonic() - started, 1)
        yield box
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            journal = container.sh("journalctl --no-pager -n 400", check=False, timeout=30)
            (ARTIFACTS / "appliance-journal.txt").write_text(journal)
        except (OSError, subprocess.SubprocessError, AssertionError):
            pass
        container.shutdown()
        shutil.rmtree(container.workdir, ignore_errors=True)
        s3.stop()
        proxy.stop()
        network.destroy()


def test_provisioned_from_bare_debian(box: Box) -> None:
    """The first run installs Debian packages with apt, changes things, fails nothing; services are active."""
    counts = recap(box.first_run)
    assert counts["changed"] > 10 and counts["failed"] == 0 and counts["unreachable"] == 0
    assert "TASK [common : Install the missing Debian packages]" in box.first_run
    assert box.sh("dpkg-query -W -f '${Status}' python3-venv") == "install ok installed"
    states = box.sh("systemctl is-active sensor.target sensor-uploader.service sensor-web.service " + READER)
    assert states.split() == ["active"] * 4
    assert box.sh("systemctl is-enabled sensor.target").strip() == "enabled"
    assert "dialout" in box.sh(f"id -nG {USER}").split()
    assert box.sh("stat -c '%a %U:%G' /etc/sensor/sensor.env").strip() == f"640 root:{USER}"
    assert box.sh("stat -c '%U' /var/lib/sensor").strip() == USER
    assert box.sh("id sensor >/dev/null 2>&1 && echo exists || echo none").strip() == "none"
    for unit in (READER, *SERVICES):
        assert box.sh(f"systemctl show -p User --value {unit}").strip() == USER
    # The wheelhouse does not stay on the SD card next to the venv.
    assert box.sh("test -e /opt/sensor/wheelhouse && echo present || echo absent").strip() == "absent"
    # The reader streams to the dashboard at the address the dashboard listens on.
    assert f"SENSOR_WS_URL=ws://{box.network.box_ip}:8000/ws/ingest/" in box.sh("cat /etc/sensor/reader.env")


def test_status_as_documented(box: Box) -> None:
    """`systemctl status sensor-*` shows every service running, each with its own status line."""
    out = box.sh("systemctl status --no-pager --lines=0 'sensor-*'", check=False)
    for unit in (READER, *SERVICES):
        assert re.search(rf"{re.escape(unit)}.*\n(.*\n)*?\s+Active: active \(running\)", out), out
    assert re.search(r"Status: \".*recording", out), out


def test_dashboard_in_a_browser_at_the_lab_address(box: Box) -> None:
    """Chromium on the host logs in at the box's lab address: the chart is drawn and moves; no error, no 404."""
    from tests.web.browser import chromium

    with chromium() as driver:
        driver.get(box.url + "/")
        assert "/accounts/login/" in driver.current_url
        driver.find_element("name", "username").send_keys("lab")
        driver.find_element("name", "password").send_keys(box.lab_password)
        driver.find_element("css selector", "form button[type=submit]").click()
        wait_for(lambda: driver.current_url == box.url + "/", 15, "the dashboard after logging in")

        def stats() -> dict[str, Any]:
            return driver.execute_script("const s = {...(window.__sensorStats || {})}; delete s.log; return s;")

        seq0 = int(wait_for(lambda: stats().get("latest"), 30, "samples drawn in the page")["seq"])
        frames0 = stats()["frames"]
        wait_for(lambda: int(stats()["latest"]["seq"]) > seq0 + RATE and stats()["frames"] > frames0 + 30, 20,
                 "the chart to move with new samples")
        assets = driver.execute_script(
            "const urls = [...document.querySelectorAll('script[src], link[rel=stylesheet][href]')]"
            ".map(e => e.src || e.href);"
            "return Promise.all(urls.map(u => fetch(u).then(r => [u, r.status])));")
        assert any("uPlot" in url for url, _ in assets), assets
        assert all(status == 200 for _, status in assets), assets
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "appliance-dashboard.png"))
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe


def test_unplug_and_replug_two_closed_sessions_no_watchdog_kill(box: Box) -> None:
    """Unplugged for longer than the watchdog period and plugged in again: two sessions, no kill, no failure."""
    before = box.unit(READER)
    box.sim("unplug")
    wait_for(lambda: [s for s in box.sessions() if s.get("end_reason") == "unplugged"], 30,
             "the session closed as unplugged", interval=0.3)
    wait_for(lambda: "waiting" in box.sh(f"systemctl show -p StatusText --value {READER}").lower(), 30,
             "the reader's status to say it waits for the device", interval=0.3)
    # Longer than WatchdogSec=10 while the device is away: the wait must keep the watchdog fed.
    unplugged_since = time.monotonic()
    wait_for(lambda: time.monotonic() - unplugged_since > 15, 20, "15 s without the device", interval=1)
    box.sim("replug")
    wait_for(lambda: len(box.sessions()) >= 2 and box.sessions()[-1]["state"] == "open", 30,
             "a new session after the replug", interval=0.3)
    after = box.unit(READER)
    assert after["MainPID"] == before["MainPID"] and after["NRestarts"] == before["NRestarts"], (before, after)
    assert after["ActiveState"] == "active"
    journal = box.sh(f"journalctl -u {READER} --no-pager")
    assert "Watchdog timeout" not in journal and "Failed with result" not in journal, journal[-3000:]
    sessions = box.sessions()
    assert [s["state"] for s in sessions[-2:]] == ["closed", "open"]
    assert sessions[-2]["end_reason"] == "unplugged"
    box.figures["sessions after unplug + replug"] = len(sessions)


def test_batches_reach_s3_and_a_researcher_plots_them(box: Box) -> None:
    """The unplugged session reaches the S3 server on the host, closed; `sensor-analysis plot s3://…` draws it."""
    session = next(s for s in box.sessions() if s.get("end_reason") == "unplugged")
    prefix = f"{PREFIX}/{BOX}/{DEVICE}/{session['session_id']}/"
    wait_for(lambda: f"{prefix}session.json" in box.s3.objects(BUCKET), 60, "the closed session in S3", interval=0.3)
    assert len([k for k in box.s3.objects(BUCKET) if k.startswith(prefix + "batch-")]) == session["batches"]
    out = box.tmp / "plot.png"
    env = {**os.environ, **box.s3.env()}
    proc = subprocess.run(
        [str(VENV_BIN / "sensor-analysis"), "plot", f"s3://{BUCKET}/{prefix}", "--channels", "ch1,ch2",
         "--endpoint-url", box.s3.endpoint_url, "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    shutil.copyfile(out, ARTIFACTS / "appliance-plot-from-s3.png")


def test_second_run_and_a_rebuilt_wheelhouse_change_nothing(box: Box) -> None:
    """A rebuild of the wheelhouse (same commit) and a second run: changed=0, secrets kept."""
    build = subprocess.run([str(ANSIBLE_DIR / "build-wheelhouse.sh")], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}, check=True)
    assert "(unchanged)" in build.stdout, build.stdout + build.stderr  # reproducible: the same bytes again
    secrets_before = box.sh("cat /etc/sensor/ingest-token /etc/sensor/web-secret-key")
    reader_before = box.unit(READER)["MainPID"]
    output = box.playbook()
    counts = recap(output)
    assert counts["changed"] == 0 and counts["failed"] == 0, counts
    assert box.sh("cat /etc/sensor/ingest-token /etc/sensor/web-secret-key") == secrets_before
    assert box.unit(READER)["MainPID"] == reader_before
    box.figures["second run: changed"] = counts["changed"]


PSS_SCRIPT = r"""
import json, os, subprocess, sys
parent = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        parent[pid] = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]
    except OSError:
        pass
out = {}
for unit in sys.argv[1:]:
    main = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit],
                          capture_output=True, text=True).stdout.strip()
    tree, grew = {main}, True
    while grew:  # the main process and all its descendants
        more = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    out[unit] = total
print(json.dumps(out))
"""


def test_footprint_on_the_box(box: Box) -> None:
    """Venv size, free space for data, and the services' PSS while recording 8 ch × 1 kHz and uploading."""
    venv_mb = int(box.sh("du -sm /opt/sensor/venv").split()[0])
    free_mb = int(box.sh("df -m --output=avail /var/lib/sensor | tail -1").strip())
    box.figures["venv (MB)"] = venv_mb
    box.figures["free for data (MB)"] = free_mb
    units = [READER, *SERVICES]
    peak = dict.fromkeys(units, 0)
    uploaded_before = len(box.s3.objects(BUCKET))
    for _ in range(20):  # 20 samples over about 10 s of recording and uploading
        sample = json.loads(box.sh(f"python3 -c '{PSS_SCRIPT}' {' '.join(units)}"))
        for unit in units:
            peak[unit] = max(peak[unit], sample[unit])
        time.sleep(0.5)  # the sampling period of the measurement, not synchronisation
    assert len(box.s3.objects(BUCKET)) > uploaded_before, "the uploader did not upload while measured"
    for unit in units:
        assert peak[unit] > 10_000, (unit, peak)  # a real process was measured
        box.figures[f"PSS peak {unit} (MB)"] = round(peak[unit] / 1024, 1)
    box.figures["PSS all services (MB)"] = round(sum(peak.values()) / 1024, 1)
    assert venv_mb < 1000


def test_upgrade_while_recording_keeps_the_session(box: Box, tmp_path: Path) -> None:
    """A new commit provisioned while recording: uploader and dashboard restart, the session goes on unsplit."""
    clone = tmp_path / "upgrade"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=lab", "-c", "user.email=lab@example.org", "commit",
                    "-q", "--allow-empty", "-m", "The next release"], check=True, timeout=60)
    new_commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    session = box.sessions()[-1]
    assert session["state"] == "open"
    reader_pid = box.unit(READER)["MainPID"]
    others = {unit: box.unit(unit)["MainPID"] for unit in SERVICES}
    started = time.monotonic()
    output = box.playbook(clone)
    box.figures["upgrade run (s)"] = round(time.monotonic() - started, 1)
    assert recap(output)["changed"] > 0
    assert "keep recording" in output  # the playbook says which readers keep their session
    installed = box.sh("/opt/sensor/venv/bin/python -c 'import reader; print(reader.__version__)'").strip()
    assert installed.endswith("+g" + new_commit[:12]), installed
    for unit, pid in others.items():
        assert box.unit(unit)["MainPID"] != pid, f"{unit} was not restarted into the new version"
    assert box.unit(READER)["MainPID"] == reader_pid
    # The session goes on: still open, still the last one, and its counter has no hole across the upgrade.
    def batches() -> int:
        return int(box.sh(f"ls /var/lib/sensor/{DEVICE}/{session['session_id']}/ | grep -c '^batch-.*\\.csv$'"))

    batches_before = batches()
    wait_for(lambda: batches() >= batches_before + 2, 30, "more batches after the upgrade", interval=0.3)
    after = box.sessions()[-1]
    assert after["session_id"] == session["session_id"] and after["state"] == "open"
    missing = int(box.sh(
        f"awk -F, 'FNR == 1 {{ for (i = 1; i <= NF; i++) if ($i == \"seq\") c = i; next }} "
        "n++ && $c != prev + 1 { gap += $c - prev - 1 } { prev = $c } END { print gap + 0 }' "
        f"/var/lib/sensor/{DEVICE}/{session['session_id']}/batch-*.csv").strip())
    assert missing == 0
    box.figures["samples missing across the upgrade"] = missing
    box.figures["sessions split by the upgrade"] = len(box.sessions()) - len([s for s in box.sessions()
                                                                            if s["session_id"] <= session["session_id"]])
    # Applying the new version to the reader is a restart (what a replug does with udev): a new session.
    box.sh(f"systemctl restart {READER}")
    wait_for(lambda: box.sessions()[-1]["session_id"] != session["session_id"], 30, "the reader's new session",
             interval=0.3)
    assert box.sessions()[-1]["software_version"] == installed
    assert box.sessions()[-2]["state"] == "closed"


def test_frozen_uploader_restarted_by_watchdog(box: Box) -> None:
    """A SIGSTOPped uploader stops sending WATCHDOG=1: systemd kills it and starts a new one."""
    wait_for(lambda: box.unit("sensor-uploader.service")["ActiveState"] == "active", 60, "an active uploader")
    before = box.unit("sensor-uploader.service")
    box.sh(f"kill -STOP {before['MainPID']}")
    started = time.monotonic()

    def restarted() -> bool:
        now = box.unit("sensor-uploader.service")
        return (now["MainPID"] not in ("0", before["MainPID"]) and int(now["NRestarts"]) > int(before["NRestarts"])
                and now["ActiveState"] == "active")

    wait_for(restarted, 90, "the watchdog to restart the uploader", interval=0.5)
    elapsed = time.monotonic() - started
    assert "Watchdog timeout" in box.sh("journalctl -u sensor-uploader.service --no-pager -n 200")
    assert elapsed >= 5, f"restarted after {elapsed:.1f}s: faster than the 10 s watchdog allows"


def test_reboot_brings_every_service_back(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    """Power off and boot the same root: every service is back and the dashboard answers at the lab address."""
    box.container.poweroff()
    started = time.monotonic()
    box.container.boot()
    wait_for(lambda: box.sh("systemctl is-active sensor.target sensor-uploader.service sensor-web.service",
                            check=False).split() == ["active"] * 3, 90, "the services after the reboot", interval=0.5)
    wait_listening(box.network.box_ip, 8000, 60)
    with urllib.request.urlopen(box.url + "/accounts/login/", timeout=10) as resp:
        assert resp.status == 200
    box.figures["reboot → dashboard answering (s)"] = round(time.monotonic() - started, 1)
    assert all(s["state"] == "closed" for s in box.sessions())  # the poweroff closed the recording
    with capsys.disabled():
        print("\n\nappliance figures (one run):")
        for name, value in box.figures.items():
            print(f"  {name:<48} {value}")
    (ARTIFACTS / "appliance-figures.json").write_text(json.dumps(box.figures, indent=2) + "\n")
