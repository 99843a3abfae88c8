"""``wegent serve | migrate | create-admin | kubeconfig`` — the command line.

Every failure an operator can cause (bad settings, unreachable database) ends in one clear line
on stderr and a non-zero exit, never a traceback. The server's commands read the settings
(``load_settings``, which may generate secrets and a certificate in the data dir; ``migrate``
reads only what reaches the database); the client's command, ``kubeconfig``, reads none of
them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from wegent import kubeconfig, metrics
from wegent.container import Services
from wegent.db.engine import Database, DatabaseUnavailable
from wegent.db.migrate import (
    ZERO,
    MigrationError,
    applied_migrations,
    known_migrations,
    migrate,
    prepare_schema,
    undo,
    undo_plan,
)
from wegent.errors import ApiError
from wegent.kubeconfig import KubeconfigError
from wegent.logs import log_config
from wegent.serve import ServeError
from wegent.settings import Settings, SettingsError, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.client:
            status: int = args.run(args)
        else:
            status = args.run(load_settings(database_only=args.database_only), args)
        return status
    except (
        SettingsError,
        DatabaseUnavailable,
        MigrationError,
        ServeError,
        KubeconfigError,
    ) as exc:
        print(f"wegent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wegent", description=__doc__.splitlines()[0])
    parser.set_defaults(client=False)  # a server's command: run(settings, args)
    parser.set_defaults(database_only=False)  # True: settings without secrets nor TLS
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service (uvicorn)")
    serve.add_argument("--host", help="bind address (default WEGENT_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default WEGENT_PORT or 8000)")
    serve.add_argument(
        "--tls-port", type=int, help="HTTPS port when TLS is set (default WEGENT_TLS_PORT or 8443)"
    )
    serve.add_argument("--workers", type=int, help="worker processes (default WEGENT_WORKERS)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    serve.set_defaults(run=_serve)

    mig = commands.add_parser(
        "migrate",
        help="apply pending migrations, then exit",
        description="Apply the pending migrations, list them, or undo the newest ones. Needs "
        "the database settings only (no signing secrets).",
    )
    action = mig.add_mutually_exclusive_group()
    action.add_argument(
        "--list", action="store_true", help="print every migration, applied or pending"
    )
    action.add_argument(
        "--backwards",
        action="store_true",
        help="undo the migrations applied after --to ID, newest first (needs --yes)",
    )
    mig.add_argument(
        "--to",
        metavar="ID",
        help=f"with --backwards: the newest migration to keep ({ZERO}: undo every one)",
    )
    mig.add_argument("--yes", action="store_true", help="with --backwards: do undo them")
    mig.set_defaults(run=_migrate, database_only=True)

    admin = commands.add_parser(
        "create-admin",
        help="create an admin (or promote an existing user and set its password)",
    )
    admin.add_argument("username")
    admin.set_defaults(run=_create_admin)

    kube = commands.add_parser(
        "kubeconfig",
        help="log in, create an API token and print a kubeconfig that uses it",
        description="Log in, create an API token and print a kubeconfig that uses it, with the "
        "user's personal namespace (API.md §16). The password comes from WEGENT_PASSWORD or "
        "the terminal.",
    )
    kube.add_argument(
        "--server", required=True, metavar="URL", help="the service's URL: https://HOST:PORT"
    )
    kube.add_argument(
        "--username",
        metavar="NAME",
        help="who logs in (default WEGENT_USERNAME, else asked on the terminal)",
    )
    kube.add_argument(
        "--token-name",
        metavar="NAME",
        help="the API token's name (default kubeconfig-<host name>-<UTC time>)",
    )
    kube.add_argument(
        "--expires-in-days",
        type=int,
        metavar="N",
        help=f"the token's lifetime, 1 to 365 days (default {kubeconfig.DEFAULT_DAYS})",
    )
    kube.add_argument(
        "--certificate-authority",
        type=Path,
        metavar="FILE",
        help="the PEM that verifies an https:// server, embedded in the kubeconfig (default: "
        "the service's own certificate when this machine has it, else the system's CAs)",
    )
    kube.set_defaults(run=_kubeconfig, client=True)  # a client's command: run(args)
    return parser


def _kubeconfig(args: argparse.Namespace) -> int:
    """Print the kubeconfig; the password comes from WEGENT_PASSWORD or the terminal."""
    text = kubeconfig.make(
        kubeconfig.Options(
            server=args.server,
            username=args.username,
            token_name=args.token_name,
            expires_in_days=args.expires_in_days,
            certificate_authority=args.certificate_authority,
        ),
        os.environ,
    )
    sys.stdout.write(text)
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from wegent.api.transport import LimitedHttpToolsProtocol

    if settings.tls:
        return _serve_tls(settings, args)
    if args.tls_port is not None:
        raise SettingsError("--tls-port needs WEGENT_TLS or WEGENT_TLS_CERT_FILE")
    held = asyncio.run(_preflight(settings))
    workers = args.workers or settings.workers
    try:
        with _metrics_directory(workers):
            uvicorn.run(
                "wegent.app:create_app",
                factory=True,
                host=args.host or settings.host,
                port=args.port or settings.port,
                workers=workers,
                reload=args.reload,
                loop="uvloop",
                http=LimitedHttpToolsProtocol,
                access_log=False,  # the service writes its own (wegent.api.observe)
                log_config=log_config(settings),
                timeout_graceful_shutdown=30,
            )
    finally:
        held.release_server()
    return 0


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """Several workers keep their metrics in files of one directory (``wegent.metrics``): a
    new one for this run, given to them by the environment they inherit, removed at the end.
    ``PROMETHEUS_MULTIPROC_DIR`` set by the operator is used as it is (wiped first)."""
    given = os.environ.get(metrics.MULTIPROCESS_DIR)
    if workers < 2 and not given:
        yield
        return
    path = given or tempfile.mkdtemp(prefix="wegent-metrics-")
    metrics.prepare_directory(path)
    os.environ[metrics.MULTIPROCESS_DIR] = path
    try:
        yield
    finally:
        if not given:
            del os.environ[metrics.MULTIPROCESS_DIR]
            shutil.rmtree(path, ignore_errors=True)


def _serve_tls(settings: Settings, args: argparse.Namespace) -> int:
    """HTTP on the port and HTTPS on the TLS port, from one app per process (``wegent.serve``)."""
    import uvicorn

    from wegent import serve, tls
    from wegent.api.transport import LimitedHttpToolsProtocol

    host = args.host or settings.host
    port = args.port or settings.port
    tls_port = args.tls_port or settings.tls_port
    if port == tls_port:
        raise SettingsError(f"the HTTP and HTTPS ports must differ (both are {port})")
    assert settings.tls_cert_file is not None and settings.tls_key_file is not None
    if settings.tls_self_signed and host != settings.host:
        # --host names an address the kept certificate must cover as well.
        try:
            tls.ensure_self_signed(
                settings.data_dir,
                tls.certificate_names((settings.host, host, *settings.tls_hosts)),
            )
        except tls.TlsError as exc:
            raise SettingsError(str(exc)) from None
    sockets = [serve.bind(host, port)]
    try:
        sockets.append(serve.bind(host, tls_port))
        config = uvicorn.Config(  # also sets up uvicorn's logging, used from here on
            "wegent.app:create_app",
            factory=True,
            host=host,
            port=port,
            reload=args.reload,
            loop="uvloop",
            http=LimitedHttpToolsProtocol,
            access_log=False,  # the service writes its own (wegent.api.observe)
            log_config=log_config(settings),
            timeout_graceful_shutdown=30,
            ssl_certfile=str(settings.tls_cert_file),
            ssl_keyfile=str(settings.tls_key_file),
        )
        held = asyncio.run(_preflight(settings))
        try:
            serve.log.info("Serving HTTP on %s", serve.url("http", host, port))
            serve.log.info(
                "Serving HTTPS on %s (certificate %s)",
                serve.url("https", host, tls_port),
                settings.tls_cert_file,
            )
            workers = args.workers or settings.workers
            with _metrics_directory(workers):
                return serve.run(config, sockets, workers, settings.shutdown_delay_s)
        finally:
            held.release_server()
    finally:
        for sock in sockets:
            sock.close()


async def _preflight(settings: Settings) -> Database:
    """Fail fast with one line when the database is unreachable; migrate once for all workers.

    The embedded server stays held by this process so it outlives worker restarts.
    """
    db = Database(settings)
    await db.connect()
    try:
        await prepare_schema(db)  # or only check it: WEGENT_MIGRATE_ON_START=false
    finally:
        await db.close(keep_server=True)
    return db


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    """Forwards, ``--list``, or ``--backwards --to ID --yes``: undoing asks for both, and
    without them changes nothing and says what it would undo."""
    if not args.backwards and (args.to is not None or args.yes):
        raise SettingsError("--to and --yes go with --backwards")

    async def run() -> str:
        db = Database(settings)
        await db.connect()
        try:
            if args.list:
                return _listing(await applied_migrations(db))
            if not args.backwards:
                return await migrate(db)
            if args.to is None:
                raise MigrationError(_needs_to(await applied_migrations(db)))
            plan = undo_plan(await applied_migrations(db), args.to)
            if plan and not args.yes:
                raise MigrationError(
                    f"--backwards --to {args.to} would undo {_count(len(plan))}, newest first: "
                    f"{', '.join(plan)}; nothing was changed: add --yes to undo them"
                )
            return await undo(db, args.to)
        finally:
            await db.close()

    print(asyncio.run(run()), end="")
    return 0


def _count(n: int) -> str:
    return f"{n} migration" if n == 1 else f"{n} migrations"


def _needs_to(applied: list[str]) -> str:
    what = (
        f"{_count(len(applied))} applied, the newest {applied[-1]}"
        if applied
        else "no migration is applied"
    )
    return (
        f"--backwards needs --to ID, the newest migration to keep ({ZERO} keeps none), and "
        f"--yes; {what} (`wegent migrate --list`)"
    )


def _listing(applied: list[str]) -> str:
    """One line per migration, oldest first: applied or pending, its ID and description;
    then any applied migration this version does not have (a newer version applied it)."""
    done = set(applied)
    known = known_migrations()
    lines = [f"{'applied' if m.id in done else 'pending'}  {m.id}  {m.description}" for m in known]
    ours = {m.id for m in known}
    lines += [f"applied  {i}  (not in this version)" for i in applied if i not in ours]
    return "".join(f"{line}\n" for line in lines)


def _create_admin(settings: Settings, args: argparse.Namespace) -> int:
    password = settings.admin_password or _ask_password()
    if not 8 <= len(password) <= 128:
        raise SettingsError("the password must be 8 to 128 characters long")

    async def run() -> str:
        db = Database(settings)
        await db.connect()
        try:
            await prepare_schema(db)
            return await Services.build(settings, db).users.ensure_admin(
                args.username, password, reset=True
            )
        finally:
            await db.close()

    try:
        outcome = asyncio.run(run())
    except ApiError as exc:
        raise SettingsError(exc.message) from None
    print(f"admin {args.username}: {outcome}")
    return 0


def _ask_password() -> str:
    """Ask twice on the terminal; WEGENT_ADMIN_PASSWORD avoids the prompt."""
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SettingsError("the passwords do not match")
    return first


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
