"""sensor-web: serve the live dashboard with Daphne (migrating its small auth database first)."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import logging
import os
import socket
import sys
from typing import Any

from web.errors import ConfigError, WebError

log = logging.getLogger(__name__)

EPILOG = """\
commands (default: serve):
  sensor-web [--bind ADDR] [--port N]      migrate the database, then serve the dashboard at /
  sensor-web migrate                       create or update the database only
  sensor-web createuser NAME [--admin] [--password-stdin]
                                           add a viewer (or set the password of an existing one)
  sensor-web manage ARGS...                any Django management command (changepassword, check...)

The settings come from the environment (SENSOR_WEB_SECRET_KEY_FILE, SENSOR_WEB_ALLOWED_HOSTS,
SENSOR_INGEST_TOKEN, SENSOR_DATA_DIR, SENSOR_WEB_LOGIN_REQUIRED, ...): see docs/web.md, Settings.
The reader feeds the dashboard with SENSOR_WS_URL=ws://<bind>:<port>/ws/ingest/ and the same
SENSOR_INGEST_TOKEN.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line: serve flags plus a few maintenance subcommands."""
    parser = argparse.ArgumentParser(
        prog="sensor-web", description="Serve the sensor box's live dashboard (Django + Channels on Daphne).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", metavar="ADDR", help="address to listen on (env SENSOR_WEB_BIND, "
                        "default 127.0.0.1; 0.0.0.0 for the lab network)")
    parser.add_argument("--port", type=int, metavar="N", help="TCP port (env SENSOR_WEB_PORT, default 8000)")
    parser.add_argument("--no-migrate", action="store_true",
                        help="do not create/update the database before serving")
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING... (env SENSOR_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="serve the dashboard (the default)")
    sub.add_parser("migrate", help="create or update the database, then exit")
    user = sub.add_parser("createuser", help="add a viewer account or reset its password")
    user.add_argument("username")
    user.add_argument("--admin", action="store_true", help="also allow the admin site (staff + superuser)")
    user.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of stdin (for provisioning)")
    manage = sub.add_parser("manage", help="run a Django management command")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def setup_django() -> Any:
    """Load the settings (validating the environment) and set Django up; returns WebSettings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")
    import django
    from django.conf import settings

    django.setup()
    return settings.SENSOR_WEB


def migrate(cfg: Any) -> None:
    """Create the database folder and apply migrations (quietly; idempotent)."""
    from django.core.management import call_command

    cfg.db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    call_command("migrate", interactive=False, verbosity=0)
    log.info("database ready at %s", cfg.db_path)


def create_user(username: str, admin: bool, password_stdin: bool) -> None:
    """Create a user or set the password of an existing one."""
    from django.contrib.auth import get_user_model

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {username}: ")
        if getpass.getpass("again: ") != password:
            raise WebError("the passwords differ")
    if len(password) < 8:
        raise WebError("the password is shorter than 8 characters")
    model = get_user_model()
    user, created = model.objects.get_or_create(username=username)
    user.set_password(password)
    if admin:
        user.is_staff = user.is_superuser = True
    user.save()
    print(f"{'created' if created else 'updated'} user {username}{' (admin)' if admin else ''}")


def serve(cfg: Any) -> int:
    """Run Daphne on the ASGI application until SIGTERM/SIGINT."""
    import daphne.server  # installs Twisted's asyncio reactor before anything imports the reactor
    from daphne.endpoints import build_endpoint_description_strings

    from web import systemd
    from web.asgi import application

    if cfg.ingest_token is None:
        log.warning("SENSOR_INGEST_TOKEN is not set: the reader's stream will be refused")
    if cfg.ephemeral_key:
        log.warning("using a random per-process secret key (dev/debug mode): logins end on restart")
    server = daphne.server.Server(
        application,
        endpoints=build_endpoint_description_strings(host=cfg.bind, port=cfg.port),
        signal_handlers=True,
        verbosity=0,
        ready_callable=lambda: (log.info("%s", listening_message(cfg.bind, cfg.port)), systemd.ready()),
    )
    server.run()
    _cancel_leftover_tasks()
    if not server.listening_addresses:
        log.error("could not listen on %s:%d", cfg.bind, cfg.port)
        return 1
    log.info("stopped")
    return 0


def _cancel_leftover_tasks() -> None:
    """Cancel and finish what still runs on the stopped loop (background tasks, senders) before exit."""
    import asyncio

    loop = asyncio.get_event_loop()
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not tasks or loop.is_closed():
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.wait(tasks, timeout=5))
    log.debug("cancelled %d leftover task(s) at shutdown", len(tasks))


ALL_ADDRESSES = ("0.0.0.0", "::", "")


def listening_message(bind: str, port: int) -> str:
    """Where browsers find the dashboard: the bind address, or the host's name when bound to all addresses."""
    if bind in ALL_ADDRESSES:
        return (f"listening on all addresses ({bind or '0.0.0.0'}) port {port}: dashboard at "
                f"http://{socket.gethostname()}:{port}/ (or any address of this machine)")
    host = f"[{bind}]" if ":" in bind else bind
    return f"dashboard at http://{host}:{port}/"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the sensor-web console script."""
    args = build_parser().parse_args(argv)
    if args.log_level:
        os.environ["SENSOR_LOG_LEVEL"] = args.log_level
    try:
        cfg = setup_django()
    except ConfigError as err:
        print(f"sensor-web: configuration error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stderr, level=cfg.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in (("bind", args.bind), ("port", args.port)) if v is not None}
    if "port" in overrides and not 1 <= overrides["port"] <= 65535:
        print(f"sensor-web: --port {args.port}: expected 1..65535", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(cfg, **overrides)
    command = args.command or "serve"
    try:
        if command == "manage":
            from django.core.management import execute_from_command_line

            execute_from_command_line(["sensor-web manage", *args.args])
            return 0
        if command in ("migrate", "createuser") or not args.no_migrate:
            migrate(cfg)
        if command == "createuser":
            create_user(args.username, args.admin, args.password_stdin)
        elif command == "serve":
            return serve(cfg)
    except WebError as err:
        print(f"sensor-web: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
