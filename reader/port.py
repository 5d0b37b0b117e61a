"""The serial port: open by path or pyserial URL, bulk reads, and telling an unplug from an idle line."""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from kernel.layout import safe_id
from reader.errors import PortGone, PortUnavailable

log = logging.getLogger(__name__)

MAX_READ = 1 << 20


@dataclass(frozen=True)
class PortConfig:
    """How to open the port."""

    url: str
    baudrate: int = 115200
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False
    read_timeout: float = 0.05


def usb_serial_number(path: str) -> str | None:
    """The USB adapter's serial number for a tty path (symlinks resolved), when the system knows it."""
    real = os.path.realpath(path)
    for info in list_ports.comports():
        if info.device == real and info.serial_number:
            return info.serial_number
    return None


def device_id_for(url: str) -> tuple[str, str | None]:
    """Device id (USB serial number, else the port's name) and the USB serial number if any."""
    if "://" in url:
        return safe_id(url.split("://", 1)[1] or url.split("://", 1)[0]), None
    serial_no = usb_serial_number(url)
    return safe_id(serial_no or os.path.basename(url)), serial_no


class _KeepInputSerial(serial.Serial):
    """pyserial discards pending input on open; a reader restarted after a crash wants those lines."""

    _opening = False

    def open(self) -> None:
        """Open without flushing the kernel's input buffer."""
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def _reset_input_buffer(self) -> None:
        """Flush input, except during open."""
        if not self._opening:
            super()._reset_input_buffer()  # type: ignore[misc]


class SerialPort:
    """An open port read in bulk; ``read`` returns b"" when idle and raises PortGone on unplug."""

    def __init__(self, config: PortConfig) -> None:
        self.config = config
        opts = {
            "baudrate": config.baudrate, "bytesize": config.bytesize, "parity": config.parity,
            "stopbits": config.stopbits, "rtscts": config.rtscts, "xonxoff": config.xonxoff,
            "timeout": config.read_timeout,
        }
        try:
            if "://" in config.url:
                self._ser = serial.serial_for_url(config.url, **opts)
            else:
                self._ser = _KeepInputSerial(config.url, exclusive=True, **opts)
        except (serial.SerialException, OSError, ValueError) as err:
            raise PortUnavailable(f"cannot open {config.url}: {err}") from err
        self._fd: int | None = None
        if isinstance(self._ser, _KeepInputSerial):
            self._fd = self._ser.fileno()
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN | select.POLLERR | select.POLLHUP)
            self._timeout_ms = int(config.read_timeout * 1000)

    def read(self) -> bytes:
        """Everything waiting (up to 1 MiB), or b"" after the read timeout."""
        if self._fd is None:
            try:
                waiting = self._ser.in_waiting
                return self._ser.read(min(waiting, MAX_READ) if waiting else 1)
            except (serial.SerialException, OSError) as err:
                raise PortGone(str(err)) from err
        # A local tty: one poll and one read syscall per chunk (pyserial's read adds two more per call).
        try:
            if not self._poll.poll(self._timeout_ms):
                return b""
            data = os.read(self._fd, MAX_READ)
        except OSError as err:
            raise PortGone(str(err)) from err
        if not data:  # readable but empty: the other end hung up
            raise PortGone("device disconnected")
        return data

    def close(self) -> None:
        """Close the port, ignoring errors of a vanished device."""
        try:
            self._ser.close()
        except (serial.SerialException, OSError):
            pass


def wait_for_port(
    config: PortConfig, stop: threading.Event, poll: float = 0.2, on_wait: Callable[[], None] | None = None
) -> SerialPort | None:
    """Open the port, waiting for it to appear (logged once); None if stopped first.

    ``on_wait`` runs before every attempt: this loop is the reader's work loop while there is no port.
    """
    reported = None
    while not stop.is_set():
        if on_wait is not None:
            on_wait()
        try:
            port = SerialPort(config)
        except PortUnavailable as err:
            if reported != str(err):
                log.warning("%s; waiting for the device", err)
                reported = str(err)
            stop.wait(poll)
            continue
        if reported:
            log.info("port %s is back", config.url)
        return port
    return None
