"""`make demo`: a simulated monitor and every service of the box, locally, until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class Service:
    """One child process of the demo."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def start(self, base_env: dict[str, str], logdir: Path) -> None:
        """Start it with its output in logdir/<name>.log."""
        log = open(logdir / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the child for its life
        self.proc = subprocess.Popen(self.argv, env={**base_env, **self.env}, stdout=log, stderr=log,
                                     start_new_session=True)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> bool:
    """Wait until an HTTP server answers (any status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    """Run the demo."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("demo-data"), help="where the demo keeps its files")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--rate", type=float, default=250.0, help="simulated lines per second")
    ap.add_argument("--web-port", type=int, default=8000)
    args = ap.parse_args(argv)

    root = args.dir.resolve()
    data, s3dir, logs = root / "data", root / "s3", root / "logs"
    for d in (data, s3dir / "sensor-demo", logs):
        d.mkdir(parents=True, exist_ok=True)
    link = root / "monitor"
    token = secrets.token_urlsafe(24)
    s3_port = free_port()
    key, secret = "demo", secrets.token_urlsafe(16)
    web_port = args.web_port
    env = {**os.environ, "SENSOR_LOG_LEVEL": "INFO", "SENSOR_DATA_DIR": str(data), "SENSOR_INGEST_TOKEN": token}
    rclone = shutil.which("rclone") or str(BIN / "rclone")

    services = [
        Service("simulator", [str(BIN / "sensor-sim"), "--link", str(link), "--channels", str(args.channels),
                              "--rate", str(args.rate), "--seq", "--header", "--waveform", "mixed"]),
        Service("web", [str(BIN / "sensor-web"), "--bind", "127.0.0.1", "--port", str(web_port)],
                {"SENSOR_WEB_DEV": "1", "SENSOR_WEB_STATE_DIR": str(root / "web")}),
        Service("s3", [rclone, "serve", "s3", str(s3dir), "--addr", f"127.0.0.1:{s3_port}",
                       "--auth-key", f"{key},{secret}"]),
        Service("reader", [str(BIN / "sensor-reader"), "--port", str(link), "--batch-seconds", "10",
                           "--ws-url", f"ws://127.0.0.1:{web_port}/ws/ingest/"]),
        Service("uploader", [str(BIN / "sensor-uploader"), "--foreground", "--bucket", "sensor-demo",
                             "--endpoint-url", f"http://127.0.0.1:{s3_port}", "--box-id", "demo-box",
                             "--interval", "5", "--progress", "off"],
                {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}),
    ]
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for svc in services:
            svc.start(env, logs)
            if svc.name == "web" and not wait_http(f"http://127.0.0.1:{web_port}/", 30):
                print(f"the web app did not start: see {logs / 'web.log'}", file=sys.stderr)
                return 1
        print(f"""
sensor-box demo is running (Ctrl-C stops everything):
  dashboard      http://127.0.0.1:{web_port}/
  batches        {data}/<device>/<session>/batch-*.csv   (a batch every 10 s)
  local S3       http://127.0.0.1:{s3_port}  bucket sensor-demo -> files under {s3dir / 'sensor-demo'}
  logs           {logs}/*.log
  simulated port {link}
""", flush=True)
        while not stopping:
            for svc in services:
                if svc.proc is not None and svc.proc.poll() is not None:
                    print(f"{svc.name} exited with code {svc.proc.returncode}: see {logs / (svc.name + '.log')}",
                          file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        for svc in reversed(services):
            svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
