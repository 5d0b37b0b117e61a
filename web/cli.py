"""sensor-web: serve the live dashboard with Daphne (migrating its small auth database first)."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import socket
import sys

from kernel.logs import setup_logging
from kernel.notify import Notifier
from kernel.settings import add_version
from web.config import TABLE, WebSettings
from web.errors import ConfigError, WebError

log = logging.getLogger(__name__)

EPILOG = """\
commands (default: serve):
  sensor-web [--bind ADDR] [--port N]      migrate the database, then serve the dashboard at /
  sensor-web migrate                       create or update the database only
  sensor-web createuser NAME [--admin] [--password-stdin]
                                           add a viewer (or set the password of an existing one)
  sensor-web manage ARGS...                any Django management command (changepassword, check...)

The settings come from the environment (listed below; the manual: docs/web.md, Settings).
The reader feeds the dashboard with SENSOR_WS_URL=ws://<bind>:<port>/ws/ingest/ and the same
SENSOR_INGEST_TOKEN.

""" + TABLE.epilog()


def build_parser() -> argparse.ArgumentParser:
    """The command line: serve flags plus a few maintenance subcommands."""
    parser = argparse.ArgumentParser(
        prog="sensor-web", description="Serve the sensor box's live dashboard (Django + Channels on Daphne).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    TABLE.add_arguments(parser)
    add_version(parser)
    parser.add_argument("--no-migrate", action="store_true",
                        help="do not create/update the database before serving")
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


def setup_django(cfg: WebSettings) -> None:
    """Set Django up from our settings module, on the settings built here (no environment round trip)."""
    import django
    from django.conf import settings

    from web import config

    config.install(cfg)
    if not settings.configured:
        from web import settings as module

        settings.configure(**{name: getattr(module, name) for name in dir(module) if name.isupper()})
    django.setup()


def migrate(cfg: WebSettings) -> None:
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


def serve(cfg: WebSettings, notifier: Notifier) -> int:
    """Run Daphne on the ASGI application until SIGTERM/SIGINT."""
    import daphne.server  # installs Twisted's asyncio reactor before anything imports the reactor
    from daphne.endpoints import build_endpoint_description_strings

    from web import watchdog
    from web.asgi import application

    def ready() -> None:
        log.info("%s", listening_message(cfg.bind, cfg.port))
        notifier.ready()
        watchdog.start(notifier, cfg.bind, cfg.port, cfg.allowed_hosts)

    if cfg.ingest_token is None:
        log.warning("SENSOR_INGEST_TOKEN is not set: the reader's stream will be refused")
    if cfg.ephemeral_key:
        log.warning("using a random per-process secret key (dev/debug mode): logins end on restart")
    server = daphne.server.Server(
        application,
        endpoints=build_endpoint_description_strings(host=cfg.bind, port=cfg.port),
        signal_handlers=True,
        verbosity=0,
        ready_callable=ready,
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
    try:
        cfg = WebSettings.from_env(os.environ, args)
    except ConfigError as err:
        print(f"sensor-web: configuration error: {err}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level, os.environ)
    setup_django(cfg)
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
            notifier = Notifier.from_environ(os.environ)
            try:
                return serve(cfg, notifier)
            finally:
                notifier.close()
    except WebError as err:
        print(f"sensor-web: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
