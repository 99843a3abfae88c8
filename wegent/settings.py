"""All configuration, read from the environment once, when the app is created.

Nothing here runs at import time, so tests build apps with their own settings.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

import msgspec
import platformdirs

from wegent import tls

MIN_SECRET_BYTES = 32


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line meant for an operator."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The service's configuration. Build with :func:`load_settings`."""

    database_url: str | None = None
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    jwt_secret: str
    secret_key: str
    pool_min_size: int = 2
    pool_max_size: int = 10
    statement_timeout_ms: int = 10_000
    # False behind PgBouncer in transaction mode: no named prepared statements (wegent.db).
    db_prepared_statements: bool = True
    # False: only ``wegent migrate`` changes the schema; a start finding it behind refuses.
    migrate_on_start: bool = True
    db_connect_timeout_s: float = 5.0
    pool_acquire_timeout_s: float = 10.0
    token_lifetime_minutes: int = 60
    allow_registration: bool = True
    admin_username: str | None = None
    admin_password: str | None = None
    argon2_profile: Literal["owasp", "test"] = "owasp"
    max_body_bytes: int = 1024 * 1024
    user_cache_ttl_s: float = 5.0
    access_log: bool = False
    debug: bool = False
    cors_origins: tuple[str, ...] = ()
    max_in_flight: int = 256
    max_namespaces_per_user: int = 100
    body_timeout_s: float = 30.0
    list_budget_bytes: int = 8 * 1024 * 1024
    # Watch (API.md §15): how long the change log keeps a change, how many watches one process
    # serves, how many events a watch may fall behind, how often a bookmark is sent.
    watch_retention_s: int = 300
    watch_max: int = 10_000
    watch_buffer: int = 1000
    watch_bookmark_s: int = 30
    # Observability (API.md §18): /metrics on or off and behind a token, logs, shutdown.
    metrics: bool = True
    metrics_token: str | None = None
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = "text"
    shutdown_delay_s: float = 0.0
    # OpenTelemetry tracing (wegent.tracing): on when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    otel_endpoint: str | None = None
    # HTTPS (API.md §14): a certificate and its key, given or generated (``tls_self_signed``).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_self_signed: bool = False
    tls_port: int = 8443
    tls_hosts: tuple[str, ...] = ()  # WEGENT_TLS_HOSTS: more names for the self-signed one

    @property
    def embedded(self) -> bool:
        """True when the service runs its own PostgreSQL (no database URL configured)."""
        return self.database_url is None

    @property
    def tls(self) -> bool:
        """True when the service also serves HTTPS (on ``tls_port``)."""
        return self.tls_cert_file is not None


def default_data_dir() -> Path:
    """A per-user data folder, out of /root: the embedded server opens its parents for reading."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/wegent")
    return Path(platformdirs.user_data_dir("wegent"))


def load_settings(env: Mapping[str, str] | None = None, *, database_only: bool = False) -> Settings:
    """Read ``WEGENT_*`` variables; generate and keep secrets only for the embedded database.

    ``database_only`` is for commands that only reach the database (``wegent migrate``): the
    signing secrets are neither required, read nor generated (both are left empty: such
    settings must never build the services) and the HTTPS settings are not read (no
    certificate is made or checked).
    """
    env = os.environ if env is None else env
    database_url = env.get("WEGENT_DATABASE_URL") or None
    if database_url is not None:
        _check_dsn(database_url)
    data_dir = Path(env.get("WEGENT_DATA_DIR") or default_data_dir()).expanduser().resolve()
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        host=env.get("WEGENT_HOST", "127.0.0.1"),
        port=_int(env, "WEGENT_PORT", 8000, 1, 65535),
        workers=_int(env, "WEGENT_WORKERS", 1, 1, 256),
        jwt_secret=""
        if database_only
        else _secret(env, "WEGENT_JWT_SECRET", database_url, data_dir),
        secret_key=""
        if database_only
        else _secret(env, "WEGENT_SECRET_KEY", database_url, data_dir),
        pool_min_size=_int(env, "WEGENT_POOL_MIN_SIZE", 2, 0, 1000),
        pool_max_size=_int(env, "WEGENT_POOL_MAX_SIZE", 10, 1, 1000),
        statement_timeout_ms=_int(env, "WEGENT_STATEMENT_TIMEOUT_MS", 10_000, 0, 3_600_000),
        db_prepared_statements=_bool(env, "WEGENT_DB_PREPARED_STATEMENTS", True),
        migrate_on_start=_bool(env, "WEGENT_MIGRATE_ON_START", True),
        token_lifetime_minutes=_int(env, "WEGENT_TOKEN_LIFETIME_MINUTES", 60, 1, 60 * 24 * 30),
        allow_registration=_bool(env, "WEGENT_ALLOW_REGISTRATION", True),
        admin_username=env.get("WEGENT_ADMIN_USERNAME") or None,
        admin_password=env.get("WEGENT_ADMIN_PASSWORD") or None,
        argon2_profile=_argon2_profile(env),
        max_body_bytes=_int(env, "WEGENT_MAX_BODY_BYTES", 1024 * 1024, 1024, 64 * 1024 * 1024),
        access_log=_bool(env, "WEGENT_ACCESS_LOG", False),
        debug=_debug(env, database_url),
        cors_origins=_origins(env.get("WEGENT_CORS_ORIGINS", "")),
        max_in_flight=_int(env, "WEGENT_MAX_IN_FLIGHT", 256, 0, 1_000_000),
        max_namespaces_per_user=_int(env, "WEGENT_MAX_NAMESPACES_PER_USER", 100, 0, 1_000_000),
        body_timeout_s=_int(env, "WEGENT_BODY_TIMEOUT_S", 30, 1, 3600),
        user_cache_ttl_s=_int(env, "WEGENT_AUTH_CACHE_TTL_S", 5, 0, 300),
        list_budget_bytes=_int(
            env, "WEGENT_LIST_BUDGET_BYTES", 8 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024
        ),
        watch_retention_s=_int(env, "WEGENT_WATCH_RETENTION_S", 300, 10, 7 * 24 * 3600),
        watch_max=_int(env, "WEGENT_WATCH_MAX", 10_000, 0, 1_000_000),
        watch_buffer=_int(env, "WEGENT_WATCH_BUFFER", 1000, 10, 1_000_000),
        watch_bookmark_s=_int(env, "WEGENT_WATCH_BOOKMARK_S", 30, 1, 60),
        metrics=_bool(env, "WEGENT_METRICS", True),
        metrics_token=_metrics_token(env),
        log_level=_choice(
            env, "WEGENT_LOG_LEVEL", ("debug", "info", "warning", "error", "critical"), "info"
        ),  # type: ignore[arg-type]
        log_format=_choice(env, "WEGENT_LOG_FORMAT", ("text", "json"), "text"),  # type: ignore[arg-type]
        shutdown_delay_s=_int(env, "WEGENT_SHUTDOWN_DELAY_S", 0, 0, 300),
        otel_endpoint=_otel_endpoint(env),
    )
    if database_only:
        return settings
    # Last: a self-signed certificate is made only once every other setting is good.
    tls_settings = _tls(env, data_dir, settings.host, settings.port)
    return msgspec.structs.replace(
        settings,
        tls_cert_file=tls_settings.cert_file,
        tls_key_file=tls_settings.key_file,
        tls_self_signed=tls_settings.self_signed,
        tls_port=tls_settings.port,
        tls_hosts=tls_settings.hosts,
    )


class _Tls(NamedTuple):
    cert_file: Path | None
    key_file: Path | None
    self_signed: bool
    port: int
    hosts: tuple[str, ...]


def _tls(env: Mapping[str, str], data_dir: Path, host: str, port: int) -> _Tls:
    """The HTTPS settings; a self-signed pair is made (or reused) here, given files checked."""
    mode = env.get("WEGENT_TLS", "").strip()
    if mode not in ("", "off", "self-signed"):
        raise SettingsError(f"WEGENT_TLS must be self-signed or off, got {mode!r}")
    cert = env.get("WEGENT_TLS_CERT_FILE") or None
    key = env.get("WEGENT_TLS_KEY_FILE") or None
    if cert is not None and key is None:
        raise SettingsError("WEGENT_TLS_KEY_FILE is required with WEGENT_TLS_CERT_FILE")
    if key is not None and cert is None:
        raise SettingsError("WEGENT_TLS_CERT_FILE is required with WEGENT_TLS_KEY_FILE")
    self_signed = mode == "self-signed"
    if self_signed and cert is not None:
        raise SettingsError(
            "WEGENT_TLS=self-signed and WEGENT_TLS_CERT_FILE/WEGENT_TLS_KEY_FILE exclude each other"
        )
    hosts = _tls_hosts(env.get("WEGENT_TLS_HOSTS", ""))
    if hosts and not self_signed:
        raise SettingsError("WEGENT_TLS_HOSTS is only used with WEGENT_TLS=self-signed")
    tls_port = _int(env, "WEGENT_TLS_PORT", 8443, 1, 65535)
    if not self_signed and cert is None:
        return _Tls(None, None, False, tls_port, ())
    if tls_port == port:
        raise SettingsError(f"WEGENT_TLS_PORT must differ from WEGENT_PORT (both are {port})")
    try:
        if self_signed:
            cert_path, key_path = tls.ensure_self_signed(
                data_dir, tls.certificate_names((host, *hosts))
            )
        else:
            cert_path = Path(str(cert)).expanduser().resolve()
            key_path = Path(str(key)).expanduser().resolve()
            tls.check_pair(cert_path, key_path)
    except tls.TlsError as exc:
        raise SettingsError(str(exc)) from None
    return _Tls(cert_path, key_path, self_signed, tls_port, hosts)


def _tls_hosts(raw: str) -> tuple[str, ...]:
    """Comma-separated DNS names or IP addresses the self-signed certificate also covers."""
    hosts: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name = tls.parse_name(item)
        if name is None:
            raise SettingsError(
                f"WEGENT_TLS_HOSTS: {item!r} is neither a DNS name nor an IP address"
            )
        hosts.append(name)
    return tuple(dict.fromkeys(hosts))


def _check_dsn(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SettingsError(
            "WEGENT_DATABASE_URL must be a PostgreSQL DSN such as "
            "postgresql://user:password@host:5432/dbname"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise SettingsError(f"WEGENT_DATABASE_URL has a malformed port: {exc}") from None
    if not parts.hostname and "host=" not in parts.query:
        raise SettingsError("WEGENT_DATABASE_URL names no host")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _debug(env: Mapping[str, str], database_url: str | None) -> bool:
    """Debug mode is for the embedded database only; a production database refuses it."""
    debug = _bool(env, "WEGENT_DEBUG", False)
    if debug and database_url is not None:
        raise SettingsError("WEGENT_DEBUG is not allowed with WEGENT_DATABASE_URL")
    return debug


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, default).strip().lower() or default
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


_OTEL_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _otel_endpoint(env: Mapping[str, str]) -> str | None:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` turns tracing on (``wegent.tracing``): the ``otel``
    extra must then be installed."""
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or None
    if endpoint is not None and not all(map(_installed, _OTEL_MODULES)):
        raise SettingsError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'wegent[otel]'"
        )
    return endpoint


def _metrics_token(env: Mapping[str, str]) -> str | None:
    """``WEGENT_METRICS_TOKEN``: /metrics then needs ``Authorization: Bearer`` with it."""
    value = env.get("WEGENT_METRICS_TOKEN") or None
    if value is not None and len(value.encode()) < 16:
        raise SettingsError("WEGENT_METRICS_TOKEN must be at least 16 bytes long")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    """Comma-separated origins allowed by CORS; none means CORS stays closed."""
    origins = tuple(o.strip() for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise SettingsError(f"WEGENT_CORS_ORIGINS: {origin!r} is not an http(s) origin")
    return origins


def _argon2_profile(env: Mapping[str, str]) -> Literal["owasp", "test"]:
    raw = env.get("WEGENT_ARGON2_PROFILE", "owasp")
    if raw == "owasp":
        return "owasp"
    if raw == "test":
        return "test"
    raise SettingsError(f"WEGENT_ARGON2_PROFILE must be owasp or test, got {raw!r}")


def _secret(env: Mapping[str, str], name: str, database_url: str | None, data_dir: Path) -> str:
    value = env.get(name) or None
    if value is not None:
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"{name} must be at least {MIN_SECRET_BYTES} bytes long")
        return value
    if database_url is not None:
        raise SettingsError(
            f"{name} is required with WEGENT_DATABASE_URL (at least {MIN_SECRET_BYTES} bytes)"
        )
    return _kept_secret(data_dir / "secrets" / name.removeprefix("WEGENT_").lower())


def _kept_secret(path: Path) -> str:
    """Generate a secret once and keep it (mode 0600) so restarts and workers share it."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    try:
        os.link(tmp, path)  # atomic: the first worker to get here wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    value = path.read_text().strip()
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(f"the kept secret {path} is shorter than {MIN_SECRET_BYTES} bytes")
    return value
