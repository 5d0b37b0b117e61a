"""`make demo`: a simulated monitor and every service of the box, locally, until Ctrl-C.

At start it prints everything needed next: the dashboard, the data folder, the local S3 server with its
bucket and credentials, and a paste-ready `sensor-analysis` command. Ctrl-C stops the recording first
(the reader commits its last batch and closes the session), then lets the uploader finish a last pass
(bounded by `--final-pass-timeout`), so the S3 copy is complete and the session is marked touched; then
the dashboard and the S3 server stop. The S3 objects stay as files under the demo's folder.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kernel.layout import BATCH_PREFIX, BATCH_SUFFIX, is_touched, session_dirs

BIN = Path(sys.executable).parent
BUCKET, BOX_ID, DEVICE_ID = "sensor-demo", "demo-box", "monitor"
DEFAULT_WEB_PORT = 8000
EXIT_FAILED, EXIT_USAGE = 1, 2


@dataclass(eq=False)
class Service:
    """One child process of the demo, in its own session (the terminal's Ctrl-C reaches only the demo)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, base_env: dict[str, str], logdir: Path) -> None:
        """Start it with its output in logdir/<name>.log."""
        with open(logdir / f"{self.name}.log", "ab") as log:
            self.proc = subprocess.Popen(self.argv, env={**base_env, **self.env}, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def running(self) -> bool:
        """True while the process lives."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} did not stop within {timeout:g} s: killed", flush=True)
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def port_taken(port: int) -> str | None:
    """Why `port` cannot be bound on loopback, or None when it is free."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as err:
            return "in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
    return None


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def choose_web_port(asked: int | None) -> tuple[int, str | None]:
    """The dashboard's port and a note: the default moves aside when taken, an explicit port must be free."""
    if asked is None:
        why = port_taken(DEFAULT_WEB_PORT)
        if why is None:
            return DEFAULT_WEB_PORT, None
        port = free_port()
        return port, f"port {DEFAULT_WEB_PORT} is {why}: the dashboard uses port {port} instead"
    if asked == 0:
        return free_port(), None
    why = port_taken(asked)
    if why is not None:
        raise SystemExit(f"demo: --web-port {asked}: port {asked} is {why}; choose another "
                         "(make demo PORT=N), or 0 for any free port")
    return asked, None


def answers_http(url: str) -> bool:
    """True when an HTTP server answers at `url` (any status)."""
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def wait_until(ready: Callable[[], bool], svc: Service, timeout: float) -> bool:
    """Wait until `ready()` holds; False when the service died or the time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if not svc.running():
            return False
        time.sleep(0.1)
    return False


def analysis_tool() -> str:
    """`sensor-analysis` when PATH finds this venv's, else its full path."""
    mine = str(BIN / "sensor-analysis")
    return "sensor-analysis" if shutil.which("sensor-analysis") == mine else shlex.quote(mine)


def analysis_command(key: str, secret: str, endpoint: str, verb: str = "summary") -> str:
    """A paste-ready sensor-analysis command over the demo's S3 copy."""
    tail = " --out demo.png" if verb == "plot" else ""
    return (f"AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} AWS_ENDPOINT_URL={endpoint} "
            f"{analysis_tool()} {verb} s3://{BUCKET}/{BOX_ID}/{DEVICE_ID}{tail}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The demo's options (`make demo PORT=… RATE=… CHANNELS=…` passes the first three)."""
    ap = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("demo-data"), help="where the demo keeps its files "
                    "(default demo-data)")
    ap.add_argument("--web-port", type=int, default=None, metavar="N",
                    help=f"dashboard port (make: PORT); default {DEFAULT_WEB_PORT}, or a free one when "
                    f"{DEFAULT_WEB_PORT} is taken; 0 = any free port; an explicit taken port is an error")
    ap.add_argument("--rate", type=float, default=250.0, help="simulated lines per second (make: RATE; default 250)")
    ap.add_argument("--channels", type=int, default=4, help="simulated channels (make: CHANNELS; default 4)")
    ap.add_argument("--batch-seconds", type=float, default=10.0, help="seconds per batch (default 10)")
    ap.add_argument("--final-pass-timeout", type=float, default=60.0, metavar="S",
                    help="at Ctrl-C, how long the uploader's last pass may take (default 60)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo until Ctrl-C/SIGTERM; exit 0 after a clean stop, 1 when a service failed, 2 on bad options."""
    args = parse_args(argv)
    if not (args.rate >= 0 and 1 <= args.channels <= 1024 and args.batch_seconds > 0):
        print("demo: --rate must be >= 0, --channels 1..1024, --batch-seconds > 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        web_port, port_note = choose_web_port(args.web_port)
    except SystemExit as err:
        print(err, file=sys.stderr)
        return EXIT_USAGE

    root = args.dir.resolve()
    data, s3dir, logs = root / "data", root / "s3", root / "logs"
    for d in (data, s3dir / BUCKET, logs):
        d.mkdir(parents=True, exist_ok=True)
    link = root / "monitor"
    s3_port = free_port()
    endpoint = f"http://127.0.0.1:{s3_port}"
    key, secret = "demo", secrets.token_urlsafe(16)
    s3_env = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    env = {**os.environ, "SENSOR_LOG_LEVEL": "INFO", "SENSOR_DATA_DIR": str(data),
           "SENSOR_INGEST_TOKEN": secrets.token_urlsafe(24)}
    rclone = shutil.which("rclone") or str(BIN / "rclone")
    uploader_argv = [str(BIN / "sensor-uploader"), "--bucket", BUCKET, "--endpoint-url", endpoint,
                     "--box-id", BOX_ID, "--interval", "5", "--progress", "off"]

    s3 = Service("s3", [rclone, "serve", "s3", str(s3dir), "--addr", f"127.0.0.1:{s3_port}",
                        "--auth-key", f"{key},{secret}"])
    web = Service("web", [str(BIN / "sensor-web"), "--bind", "127.0.0.1", "--port", str(web_port)],
                  {"SENSOR_WEB_DEV": "1", "SENSOR_WEB_STATE_DIR": str(root / "web")})
    simulator = Service("simulator", [str(BIN / "sensor-sim"), "--link", str(link), "--channels",
                                      str(args.channels), "--rate", str(args.rate), "--seq", "--header",
                                      "--waveform", "mixed"])
    reader = Service("reader", [str(BIN / "sensor-reader"), "--port", str(link), "--device-id", DEVICE_ID,
                                "--batch-seconds", str(args.batch_seconds),
                                "--ws-url", f"ws://127.0.0.1:{web_port}/ws/ingest/"])
    uploader = Service("uploader", [*uploader_argv, "--foreground"], s3_env)
    services = [s3, web, simulator, reader, uploader]

    signals: list[int] = []
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    failed = False
    try:
        if port_note:
            print(f"demo: {port_note}", flush=True)
        starts = {s3: lambda: answers_http(endpoint + "/"),
                  web: lambda: answers_http(f"http://127.0.0.1:{web_port}/"),
                  simulator: link.exists}
        for svc in services:
            if stopping.is_set():
                break
            svc.start(env, logs)
            if svc in starts and not wait_until(starts[svc], svc, 60):
                print(f"demo: {svc.name} did not start: see {logs / (svc.name + '.log')}", file=sys.stderr)
                failed = True
                stopping.set()
        if not stopping.is_set():
            text = banner(web_port, data, endpoint, s3dir, key, secret, logs, link, args.batch_seconds)
            print(text, flush=True)
        while not stopping.wait(0.5):  # a service that dies is reported and stops the demo
            for svc in services:
                if not svc.running():
                    print(f"demo: {svc.name} exited with code {svc.proc.returncode if svc.proc else '?'}: "
                          f"see {logs / (svc.name + '.log')}", file=sys.stderr)
                    failed = True
                    stopping.set()
    finally:
        print("\nstopping: the reader commits its last batch and closes the session…", flush=True)
        reader.stop(timeout=30)
        simulator.stop()
        uploader.stop(timeout=30)
        if s3.running() and not failed:
            failed = not final_pass(uploader_argv, {**env, **s3_env}, logs, args.final_pass_timeout, signals)
        web.stop()
        s3.stop()
    report(data, s3dir, key, secret)
    return EXIT_FAILED if failed else 0


def final_pass(argv: list[str], env: dict[str, str], logs: Path, timeout: float, signals: list[int]) -> bool:
    """Run one last upload pass (`--once`), bounded; a second Ctrl-C cuts it short. True when it succeeded."""
    print(f"uploading what is left (at most {timeout:g} s; Ctrl-C again to skip)…", flush=True)
    seen = len(signals)
    last = Service("uploader-final", [*argv, "--once"])
    last.start(env, logs)
    assert last.proc is not None
    deadline = time.monotonic() + timeout
    while last.proc.poll() is None and time.monotonic() < deadline and len(signals) == seen:
        time.sleep(0.1)
    if last.proc.poll() is None:
        why = "skipped" if len(signals) > seen else f"not finished after {timeout:g} s"
        print(f"demo: the last upload pass was {why}: stopped; the rest uploads at the next `make demo`",
              file=sys.stderr)
        last.stop(timeout=30)
        return False
    if last.proc.returncode != 0:
        print(f"demo: the last upload pass failed (exit {last.proc.returncode}): see {logs / 'uploader-final.log'}",
              file=sys.stderr)
        return False
    return True


def banner(web_port: int, data: Path, endpoint: str, s3dir: Path, key: str, secret: str, logs: Path,
           link: Path, batch_seconds: float) -> str:
    """What the user needs next, printed once everything answers."""
    return f"""
sensor-box demo is running (Ctrl-C stops everything, uploading what is left first):
  dashboard      http://127.0.0.1:{web_port}/   (no login: the demo leaves it off)
  batches        {data}/{DEVICE_ID}/<session>/{BATCH_PREFIX}*{BATCH_SUFFIX}   (a batch every {batch_seconds:g} s)
  local S3       endpoint {endpoint}   bucket {BUCKET}
                 access key {key}   secret {secret}
                 objects as files under {s3dir / BUCKET}
  logs           {logs}/*.log
  simulated port {link}

analyse the recording now, from the data folder:
  {analysis_tool()} summary {data / DEVICE_ID}
  {analysis_tool()} plot {data / DEVICE_ID} --duration 10s --out demo.png
from S3 once a session is closed (its session.json uploaded; after Ctrl-C the demo prints how to serve
the S3 copy again):
  {analysis_command(key, secret, endpoint)}
"""


def report(data: Path, s3dir: Path, key: str, secret: str) -> None:
    """After the stop: which sessions are complete in S3, and how to reach that copy again."""
    sessions = sorted(session_dirs(data)) if data.is_dir() else []
    pending = [s for s in sessions if not is_touched(s)]
    if pending:
        print(f"not yet in S3: {', '.join(str(s.relative_to(data)) for s in pending)} (uploaded at the next run)")
    else:
        print(f"every session is in S3 and marked touched ({len(sessions)} under {data})")
    rclone = shlex.quote(shutil.which("rclone") or str(BIN / "rclone"))
    endpoint = "http://127.0.0.1:9000"
    print(f"""The S3 copy stays under {s3dir / BUCKET}. To analyse it after the demo, serve it and ask:
  {rclone} serve s3 {s3dir} --addr 127.0.0.1:9000 --auth-key {key},{secret} &
  {analysis_command(key, secret, endpoint)}""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
