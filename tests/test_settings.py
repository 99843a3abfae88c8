"""Settings: read once from the environment, secrets kept or refused, bad values one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wegent.settings import SettingsError, default_data_dir, load_settings

GOOD = "s" * 32


def test_defaults_with_the_embedded_database(tmp_path: Path) -> None:
    settings = load_settings({"WEGENT_DATA_DIR": str(tmp_path)})
    assert settings.embedded is True
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.data_dir == tmp_path.resolve()
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.argon2_profile == "owasp"
    assert (settings.migrate_on_start, settings.db_prepared_statements) == (True, True)
    assert settings.user_cache_ttl_s == 5


def test_database_only_settings_need_no_secrets_and_make_nothing(tmp_path: Path) -> None:
    """What ``wegent migrate`` reads: no signing secrets (neither required, nor read, nor
    generated) and no HTTPS settings (no certificate made or checked)."""
    external = {
        "WEGENT_DATABASE_URL": "postgresql://u:p@db:5432/wegent",
        "WEGENT_DATA_DIR": str(tmp_path),
        "WEGENT_JWT_SECRET": "short",
        "WEGENT_TLS": "self-signed",
        "WEGENT_TLS_CERT_FILE": str(tmp_path / "missing.pem"),
        "WEGENT_POOL_MAX_SIZE": "3",
    }
    settings = load_settings(external, database_only=True)
    assert (settings.database_url, settings.pool_max_size) == (external["WEGENT_DATABASE_URL"], 3)
    assert (settings.jwt_secret, settings.secret_key, settings.tls) == ("", "", False)
    embedded = load_settings(
        {"WEGENT_DATA_DIR": str(tmp_path), "WEGENT_TLS": "self-signed"}, database_only=True
    )
    assert (embedded.embedded, embedded.jwt_secret, embedded.tls) == (True, "", False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SettingsError, match="WEGENT_PORT must be an integer"):
        load_settings({**external, "WEGENT_PORT": "x"}, database_only=True)


def test_generated_secrets_are_kept_private_and_reused(tmp_path: Path) -> None:
    first = load_settings({"WEGENT_DATA_DIR": str(tmp_path)})
    second = load_settings({"WEGENT_DATA_DIR": str(tmp_path)})
    assert first.jwt_secret == second.jwt_secret
    assert first.secret_key == second.secret_key
    assert first.jwt_secret != first.secret_key
    assert len(first.jwt_secret) >= 32
    for name in ("jwt_secret", "secret_key"):
        mode = stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode)
        assert mode == 0o600
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == ["jwt_secret", "secret_key"]


def test_external_database_requires_secrets(tmp_path: Path) -> None:
    env = {
        "WEGENT_DATABASE_URL": "postgresql://u:p@db:5432/wegent",
        "WEGENT_DATA_DIR": str(tmp_path),
    }
    with pytest.raises(SettingsError, match="WEGENT_JWT_SECRET is required"):
        load_settings(env)
    with pytest.raises(SettingsError, match="WEGENT_JWT_SECRET must be at least 32 bytes"):
        load_settings({**env, "WEGENT_JWT_SECRET": "short", "WEGENT_SECRET_KEY": GOOD})
    with pytest.raises(SettingsError, match="WEGENT_SECRET_KEY is required"):
        load_settings({**env, "WEGENT_JWT_SECRET": GOOD})
    settings = load_settings({**env, "WEGENT_JWT_SECRET": GOOD, "WEGENT_SECRET_KEY": GOOD})
    assert settings.embedded is False
    assert not (tmp_path / "secrets").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@db/x", "must be a PostgreSQL DSN"),
        ("postgresql://u:p@db:notaport/x", "malformed port"),
        ("postgresql:///x", "names no host"),
    ],
)
def test_malformed_dsn_is_refused(url: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({"WEGENT_DATABASE_URL": url, "WEGENT_JWT_SECRET": GOOD})


def test_socket_dsn_is_accepted() -> None:
    env = {
        "WEGENT_DATABASE_URL": "postgresql://postgres:@/wegent?host=/run/pg",
        "WEGENT_JWT_SECRET": GOOD,
        "WEGENT_SECRET_KEY": GOOD,
    }
    assert load_settings(env).database_url == env["WEGENT_DATABASE_URL"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEGENT_PORT", "eighty", "must be an integer"),
        ("WEGENT_PORT", "70000", "between 1 and 65535"),
        ("WEGENT_ALLOW_REGISTRATION", "maybe", "true or false"),
        ("WEGENT_ARGON2_PROFILE", "fast", "owasp or test"),
        ("WEGENT_MIGRATE_ON_START", "later", "WEGENT_MIGRATE_ON_START must be true or false"),
        ("WEGENT_AUTH_CACHE_TTL_S", "301", "WEGENT_AUTH_CACHE_TTL_S must be between 0 and 300"),
        (
            "WEGENT_DB_PREPARED_STATEMENTS",
            "sometimes",
            "WEGENT_DB_PREPARED_STATEMENTS must be true or false",
        ),
    ],
)
def test_bad_values_are_one_clear_line(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings({"WEGENT_DATA_DIR": str(tmp_path), name: value})
    assert "\n" not in str(caught.value)


def test_values_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "WEGENT_DATA_DIR": str(tmp_path),
            "WEGENT_HOST": "0.0.0.0",
            "WEGENT_PORT": "9000",
            "WEGENT_WORKERS": "4",
            "WEGENT_POOL_MIN_SIZE": "1",
            "WEGENT_POOL_MAX_SIZE": "20",
            "WEGENT_ALLOW_REGISTRATION": "off",
            "WEGENT_ARGON2_PROFILE": "test",
            "WEGENT_MIGRATE_ON_START": "false",
            "WEGENT_DB_PREPARED_STATEMENTS": "off",
            "WEGENT_AUTH_CACHE_TTL_S": "0",
        }
    )
    assert settings.user_cache_ttl_s == 0
    assert (settings.migrate_on_start, settings.db_prepared_statements) == (False, False)
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9000, 4)
    assert (settings.pool_min_size, settings.pool_max_size) == (1, 20)
    assert settings.allow_registration is False
    assert settings.argon2_profile == "test"


def test_root_keeps_its_data_out_of_root_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert default_data_dir() == Path("/var/lib/wegent")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert default_data_dir() != Path("/var/lib/wegent")


def test_production_database_refuses_debug_and_checks_origins(tmp_path: Path) -> None:
    env = {
        "WEGENT_DATABASE_URL": "postgresql://u:p@db:5432/wegent",
        "WEGENT_JWT_SECRET": GOOD,
        "WEGENT_SECRET_KEY": GOOD,
    }
    with pytest.raises(SettingsError, match="WEGENT_DEBUG is not allowed with WEGENT_DATABASE_URL"):
        load_settings({**env, "WEGENT_DEBUG": "true"})
    assert load_settings(env).debug is False
    assert load_settings({"WEGENT_DATA_DIR": str(tmp_path), "WEGENT_DEBUG": "1"}).debug is True
    origins = load_settings({**env, "WEGENT_CORS_ORIGINS": "https://a.example, http://b.example"})
    assert origins.cors_origins == ("https://a.example", "http://b.example")
    assert load_settings(env).cors_origins == ()
    with pytest.raises(SettingsError, match="not an http"):
        load_settings({**env, "WEGENT_CORS_ORIGINS": "ftp://x"})
