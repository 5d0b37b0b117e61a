"""The udev rules against described adapters: umockdev provides the sysfs tree, `udevadm test` runs the real rules."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.appliance.conftest import need_root, need_tools, render_udev_rules

DEVICES = Path(__file__).parent / "devices"
TTY = "/sys/class/tty/ttyUSB0"
USB_SERIAL = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/ttyUSB0"


def udev_test(description: str, syspath: str) -> tuple[dict[str, str], str]:
    """Run `udevadm test --action=add` on a described device; return its properties and the log."""
    proc = subprocess.run(
        ["umockdev-run", "-d", str(DEVICES / description), "--", "udevadm", "test", "--action=add", syspath],
        check=False, capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    props: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isupper():
            props[key] = value
    return props, proc.stderr + proc.stdout


@pytest.fixture(autouse=True)
def _tools() -> None:
    need_root()
    need_tools("umockdev-run", "udevadm")


@pytest.mark.root
@pytest.mark.parametrize(
    ("description", "link"),
    [
        ("ftdi-ft232r.umockdev", "/dev/sensor/monitor-FT5XK3AB"),
        ("cp2102.umockdev", "/dev/sensor/monitor-0001"),
        # The CH340 has no serial number: its link is named after the USB port it sits in.
        ("ch340.umockdev", "/dev/sensor/monitor-port-1-1"),
    ],
)
def test_known_adapter_gets_link_and_reader(udev_sandbox: Path, description: str, link: str) -> None:
    """A listed adapter gets its stable links, the systemd tag and the reader instance for its tty."""
    props, log = udev_test(description, TTY)
    links = props.get("DEVLINKS", "").split()
    assert link in links, log
    assert "/dev/sensor/monitor" in links
    assert ":systemd:" in props.get("TAGS", "")
    assert props.get("SYSTEMD_WANTS") == "sensor-reader@ttyUSB0.service"
    # udevadm test really creates the links: they point at the tty.
    assert Path(link).is_symlink() and Path(link).resolve() == Path("/dev/ttyUSB0")


@pytest.mark.root
def test_other_serial_adapter_is_left_alone(udev_sandbox: Path) -> None:
    """A USB serial adapter not in the list (Prolific PL2303) gets no sensor link and starts no reader."""
    props, log = udev_test("pl2303.umockdev", TTY)
    assert props.get("DEVPATH", "").endswith("/ttyUSB0"), log
    assert not [link for link in props.get("DEVLINKS", "").split() if link.startswith("/dev/sensor/")]
    assert "SYSTEMD_WANTS" not in props
    assert "SENSOR_MONITOR" not in props
    assert not Path("/dev/sensor/monitor").exists()


@pytest.mark.root
def test_ftdi_latency_timer_lowered(udev_sandbox: Path) -> None:
    """The FTDI's usb-serial device gets latency_timer=1; a CP210x (no such attribute) is not touched.

    `udevadm test` logs the attribute write it would make but does not perform it, so the log is checked.
    """
    _, log = udev_test("ftdi-ft232r.umockdev", USB_SERIAL)
    assert f"ATTR '{USB_SERIAL}/latency_timer' writing '1'" in log
    _, log = udev_test("cp2102.umockdev", USB_SERIAL)
    assert "latency_timer" not in log


@pytest.mark.root
@pytest.mark.parametrize(("serial", "matches"), [("FT5XK3AB", True), ("OTHER123", False)])
def test_serial_pinned_adapter(udev_sandbox: Path, serial: str, matches: bool) -> None:
    """An adapter entry with a serial number (Ansible variable) matches only that adapter."""
    udev_sandbox.write_text(
        render_udev_rules(reader_udev_adapters=[{"name": "ECG", "vendor": "0403", "product": "6001", "serial": serial}])
    )
    props, log = udev_test("ftdi-ft232r.umockdev", TTY)
    assert ("SYSTEMD_WANTS" in props) is matches, log
    assert ("/dev/sensor/monitor-FT5XK3AB" in props.get("DEVLINKS", "")) is matches
