"""HTTPS settings (API.md §14, Transport): each bad setting is one exact line; the self-signed
certificate is made once, private, for the right names, and made again only when it must be."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wegent import tls
from wegent.cli import main
from wegent.settings import SettingsError, load_settings
from wegent.tls import certificate_authority_file, certificate_names_of


def load(data_dir: Path, **env: str) -> object:
    return load_settings({"WEGENT_DATA_DIR": str(data_dir), **env})


def read_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def make_pair(
    folder: Path,
    *,
    issuer: str | None = None,
    names: tuple[str, ...] = ("localhost",),
    days: int = 30,
) -> tuple[Path, Path]:
    """A certificate and key in ``folder``; self-issued unless ``issuer`` names another CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "given")])
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]) if issuer else None
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "given.crt", folder / "given.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# --- settings: every refusal is one exact line ------------------------------------------------


def test_no_certificate_is_made_when_another_setting_is_bad(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        self_signed(tmp_path, WEGENT_POOL_MAX_SIZE="0")
    assert not (tmp_path / "tls").exists()


def test_tls_is_off_by_default(tmp_path: Path) -> None:
    settings = load_settings({"WEGENT_DATA_DIR": str(tmp_path)})
    assert settings.tls is False
    assert (settings.tls_cert_file, settings.tls_key_file) == (None, None)
    assert settings.tls_port == 8443
    assert certificate_authority_file(settings) is None
    assert not (tmp_path / "tls").exists()
    off = load_settings({"WEGENT_DATA_DIR": str(tmp_path), "WEGENT_TLS": "off"})
    assert off.tls is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEGENT_TLS": "on"}, "WEGENT_TLS must be self-signed or off, got 'on'"),
        (
            {"WEGENT_TLS_CERT_FILE": "/c.pem"},
            "WEGENT_TLS_KEY_FILE is required with WEGENT_TLS_CERT_FILE",
        ),
        (
            {"WEGENT_TLS_KEY_FILE": "/k.pem"},
            "WEGENT_TLS_CERT_FILE is required with WEGENT_TLS_KEY_FILE",
        ),
        (
            {
                "WEGENT_TLS": "self-signed",
                "WEGENT_TLS_CERT_FILE": "/c.pem",
                "WEGENT_TLS_KEY_FILE": "/k.pem",
            },
            "WEGENT_TLS=self-signed and WEGENT_TLS_CERT_FILE/WEGENT_TLS_KEY_FILE exclude each other",
        ),
        (
            {"WEGENT_TLS_HOSTS": "example.com"},
            "WEGENT_TLS_HOSTS is only used with WEGENT_TLS=self-signed",
        ),
        (
            {"WEGENT_TLS": "self-signed", "WEGENT_TLS_HOSTS": "ok.example, bad_name"},
            "WEGENT_TLS_HOSTS: 'bad_name' is neither a DNS name nor an IP address",
        ),
        (
            {"WEGENT_TLS": "self-signed", "WEGENT_TLS_HOSTS": "-x.example"},
            "WEGENT_TLS_HOSTS: '-x.example' is neither a DNS name nor an IP address",
        ),
        (
            {"WEGENT_TLS": "self-signed", "WEGENT_TLS_PORT": "0"},
            "WEGENT_TLS_PORT must be between 1 and 65535, got 0",
        ),
        (
            {"WEGENT_TLS": "self-signed", "WEGENT_TLS_PORT": "x"},
            "WEGENT_TLS_PORT must be an integer, got 'x'",
        ),
        (
            {"WEGENT_TLS": "self-signed", "WEGENT_TLS_PORT": "8000"},
            "WEGENT_TLS_PORT must differ from WEGENT_PORT (both are 8000)",
        ),
        (
            {"WEGENT_TLS": "self-signed", "WEGENT_PORT": "9000", "WEGENT_TLS_PORT": "9000"},
            "WEGENT_TLS_PORT must differ from WEGENT_PORT (both are 9000)",
        ),
    ],
)
def test_bad_tls_settings_are_one_exact_line(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, **env)
    assert str(caught.value) == message


def test_given_files_must_exist(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path / "given")
    missing = tmp_path / "missing.pem"
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, WEGENT_TLS_CERT_FILE=str(missing), WEGENT_TLS_KEY_FILE=str(key))
    assert str(caught.value) == f"WEGENT_TLS_CERT_FILE: no such file: {missing}"
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, WEGENT_TLS_CERT_FILE=str(cert), WEGENT_TLS_KEY_FILE=str(missing))
    assert str(caught.value) == f"WEGENT_TLS_KEY_FILE: no such file: {missing}"
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, WEGENT_TLS_CERT_FILE=str(tmp_path), WEGENT_TLS_KEY_FILE=str(key))
    assert str(caught.value) == f"WEGENT_TLS_CERT_FILE: cannot read {tmp_path}: Is a directory"


def test_given_files_must_load(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path / "given")
    other_cert, other_key = make_pair(tmp_path / "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a pem file\n")
    cases = [
        (garbage, key, f"WEGENT_TLS_CERT_FILE: {garbage} holds no PEM certificate"),
        (cert, garbage, f"WEGENT_TLS_KEY_FILE: {garbage} holds no PEM private key"),
        (cert, cert, f"WEGENT_TLS_KEY_FILE: {cert} holds no PEM private key"),
        (
            cert,
            other_key,
            f"WEGENT_TLS_KEY_FILE: {other_key} is not the key of the certificate in {cert}",
        ),
    ]
    for cert_file, key_file, message in cases:
        with pytest.raises(SettingsError) as caught:
            load(tmp_path, WEGENT_TLS_CERT_FILE=str(cert_file), WEGENT_TLS_KEY_FILE=str(key_file))
        assert str(caught.value) == message
    encrypted = tmp_path / "encrypted.key"
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, WEGENT_TLS_CERT_FILE=str(cert), WEGENT_TLS_KEY_FILE=str(encrypted))
    assert (
        str(caught.value)
        == f"WEGENT_TLS_KEY_FILE: {encrypted} is encrypted; give an unencrypted key"
    )
    assert other_cert.exists()


def test_given_files_that_ssl_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = make_pair(tmp_path / "given")

    def refuse(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        raise ssl.SSLError(336245135, "EE_KEY_TOO_SMALL")

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", refuse)
    with pytest.raises(SettingsError) as caught:
        load(tmp_path, WEGENT_TLS_CERT_FILE=str(cert), WEGENT_TLS_KEY_FILE=str(key))
    assert str(caught.value) == (
        "WEGENT_TLS_CERT_FILE and WEGENT_TLS_KEY_FILE do not load: EE_KEY_TOO_SMALL"
    )


def test_given_files_are_used_as_they_are(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path / "given")
    settings = load_settings(
        {
            "WEGENT_DATA_DIR": str(tmp_path / "data"),
            "WEGENT_TLS_CERT_FILE": str(cert),
            "WEGENT_TLS_KEY_FILE": str(key),
            "WEGENT_TLS_PORT": "9443",
        }
    )
    assert settings.tls is True
    assert settings.tls_self_signed is False
    assert (settings.tls_cert_file, settings.tls_key_file) == (cert, key)
    assert settings.tls_port == 9443
    assert not (tmp_path / "data" / "tls").exists()
    # Self-issued: clients trust the certificate itself.
    assert certificate_authority_file(settings) == cert


def test_a_certificate_issued_by_a_ca_has_no_authority_file(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path / "given", issuer="Some CA")
    settings = load_settings(
        {
            "WEGENT_DATA_DIR": str(tmp_path / "data"),
            "WEGENT_TLS_CERT_FILE": str(cert),
            "WEGENT_TLS_KEY_FILE": str(key),
        }
    )
    assert settings.tls is True
    assert certificate_authority_file(settings) is None


# --- the self-signed certificate ----------------------------------------------------------------


def self_signed(data_dir: Path, **env: str) -> object:
    return load_settings({"WEGENT_DATA_DIR": str(data_dir), "WEGENT_TLS": "self-signed", **env})


def test_self_signed_covers_the_host_names(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "WEGENT_DATA_DIR": str(tmp_path),
            "WEGENT_TLS": "self-signed",
            "WEGENT_HOST": "10.1.2.3",
            "WEGENT_TLS_HOSTS": " Wegent.Example.COM., [fe80::1], *.apps.example, 10.1.2.3,",
        }
    )
    assert settings.tls is True and settings.tls_self_signed is True
    assert settings.tls_hosts == ("wegent.example.com", "fe80::1", "*.apps.example", "10.1.2.3")
    assert settings.tls_cert_file == tmp_path / "tls" / "server.crt"
    assert settings.tls_key_file == tmp_path / "tls" / "server.key"
    assert certificate_authority_file(settings) == settings.tls_cert_file
    cert = read_cert(settings.tls_cert_file)
    expected = {
        "localhost",
        "127.0.0.1",
        "::1",
        socket.gethostname().lower(),
        "10.1.2.3",
        "wegent.example.com",
        "fe80::1",
        "*.apps.example",
    }
    assert certificate_names_of(cert) == expected
    # CA-less: its own issuer, not a CA, for server authentication only.
    assert cert.issuer == cert.subject
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=800)


def test_a_wildcard_bind_address_is_not_a_name(tmp_path: Path) -> None:
    settings = self_signed(tmp_path, WEGENT_HOST="0.0.0.0")
    names = certificate_names_of(read_cert(settings.tls_cert_file))  # type: ignore[attr-defined]
    assert "0.0.0.0" not in names
    assert {"localhost", "127.0.0.1", "::1"} <= names


def test_self_signed_is_private_and_reused(tmp_path: Path) -> None:
    first = self_signed(tmp_path)
    cert = tmp_path / "tls" / "server.crt"
    key = tmp_path / "tls" / "server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    cert_pem, key_pem = cert.read_bytes(), key.read_bytes()
    second = self_signed(tmp_path)
    assert (cert.read_bytes(), key.read_bytes()) == (cert_pem, key_pem)
    assert first.tls_cert_file == second.tls_cert_file == cert  # type: ignore[attr-defined]
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == [
        ".lock",
        "server.crt",
        "server.key",
    ]
    # The pair loads into a server context and verifies for a client trusting the certificate.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    assert client.verify_mode == ssl.CERT_REQUIRED


def test_a_widened_key_mode_is_narrowed_again(tmp_path: Path) -> None:
    self_signed(tmp_path)
    key = tmp_path / "tls" / "server.key"
    key.chmod(0o644)
    pem = key.read_bytes()
    self_signed(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes() == pem


def test_self_signed_is_made_again_for_a_missing_name(tmp_path: Path) -> None:
    self_signed(tmp_path)
    cert = tmp_path / "tls" / "server.crt"
    before = cert.read_bytes()
    self_signed(tmp_path, WEGENT_TLS_HOSTS="new.example")
    after = cert.read_bytes()
    assert after != before
    assert "new.example" in certificate_names_of(read_cert(cert))
    # Fewer names than it covers: still reused.
    self_signed(tmp_path)
    assert cert.read_bytes() == after


def replace_cert(
    data_dir: Path,
    *,
    names: tuple[str, ...] | None = None,
    valid_from: int = -1,
    valid_for: int = 900,
) -> x509.Name:
    """Put a certificate for the kept key in place, with ``names`` (default: every name the
    service wants) and validity days counted from now; returns its subject."""
    folder = data_dir / "tls"
    key = serialization.load_pem_private_key((folder / "server.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "replaced")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=valid_from))
        .not_valid_after(now + datetime.timedelta(days=valid_from + valid_for))
    )
    wanted = tls.certificate_names(("127.0.0.1",)) if names is None else names
    if wanted:
        sans: list[x509.GeneralName] = []
        for name in wanted:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    (folder / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return subject


def test_replace_cert_alone_is_reused(tmp_path: Path) -> None:
    """The control for the tests below: a replaced certificate that is fine is kept."""
    self_signed(tmp_path)
    subject = replace_cert(tmp_path)
    self_signed(tmp_path)
    assert read_cert(tmp_path / "tls" / "server.crt").subject == subject


@pytest.mark.parametrize(
    "change",
    [
        {"valid_from": -800, "valid_for": 810},  # expires within the renewal margin
        {"valid_from": -800, "valid_for": 700},  # expired
        {"valid_from": 1},  # not valid yet
        {"names": ()},  # no subjectAltName at all
        {"names": ("localhost", "127.0.0.1")},  # a name missing
    ],
)
def test_self_signed_is_made_again_when_it_must(tmp_path: Path, change: dict[str, Any]) -> None:
    self_signed(tmp_path)
    subject = replace_cert(tmp_path, **change)
    self_signed(tmp_path)
    cert = read_cert(tmp_path / "tls" / "server.crt")
    assert cert.subject != subject
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_after_utc - now > datetime.timedelta(days=800)


def test_self_signed_is_made_again_when_the_pair_is_broken(tmp_path: Path) -> None:
    self_signed(tmp_path)
    folder = tmp_path / "tls"
    # A key that is not the certificate's.
    good = (folder / "server.crt").read_bytes()
    _, other_key = make_pair(tmp_path / "other")
    (folder / "server.key").write_bytes(other_key.read_bytes())
    self_signed(tmp_path)
    assert (folder / "server.crt").read_bytes() != good
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "server.crt", folder / "server.key")
    # A missing key, or garbage in place of the certificate.
    (folder / "server.key").unlink()
    self_signed(tmp_path)
    assert stat.S_IMODE((folder / "server.key").stat().st_mode) == 0o600
    (folder / "server.crt").write_text("garbage")
    self_signed(tmp_path)
    server.load_cert_chain(folder / "server.crt", folder / "server.key")


def test_self_signed_in_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SettingsError) as caught:
        self_signed(blocker, WEGENT_JWT_SECRET="j" * 32, WEGENT_SECRET_KEY="k" * 32)
    assert str(caught.value) == (
        f"WEGENT_TLS=self-signed: cannot keep the certificate in {blocker / 'tls'}: Not a directory"
    )


def test_names_are_parsed_strictly() -> None:
    assert tls.parse_name("LocalHost.") == "localhost"
    assert tls.parse_name("[::1]") == "::1"
    assert tls.parse_name("0:0::1") == "::1"
    assert tls.parse_name("*.example.com") == "*.example.com"
    for bad in ("", "*", "a..b", "a_b", "-a", "a-", "a.*.b", "x" * 64, ".".join(["a"] * 128)):
        assert tls.parse_name(bad) is None, bad


def test_an_odd_machine_name_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "my_machine")
    assert tls.certificate_names(("", "::", "db.example")) == (
        "localhost",
        "127.0.0.1",
        "::1",
        "db.example",
    )


# --- wegent serve refuses before it starts --------------------------------------------------


def test_serve_refuses_a_tls_port_without_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEGENT_DATA_DIR", str(tmp_path))
    for name in ("WEGENT_DATABASE_URL", "WEGENT_TLS", "WEGENT_TLS_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--tls-port", "9443"]) == 2
    assert capsys.readouterr().err == (
        "wegent: --tls-port needs WEGENT_TLS or WEGENT_TLS_CERT_FILE\n"
    )


def test_serve_refuses_the_same_port_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WEGENT_TLS", "self-signed")
    monkeypatch.delenv("WEGENT_DATABASE_URL", raising=False)
    monkeypatch.setenv("WEGENT_TLS_PORT", "9443")
    assert main(["serve", "--port", "9443"]) == 2
    assert capsys.readouterr().err == (
        "wegent: the HTTP and HTTPS ports must differ (both are 9443)\n"
    )


def test_serve_refuses_a_busy_port_and_covers_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port in use is one line before anything starts; ``--host`` is added to the names the
    kept certificate covers."""
    monkeypatch.setenv("WEGENT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WEGENT_TLS", "self-signed")
    monkeypatch.delenv("WEGENT_DATABASE_URL", raising=False)
    with socket.socket() as busy, socket.socket() as free:
        busy.bind(("127.0.0.2", 0))
        busy.listen()
        port = busy.getsockname()[1]
        free.bind(("127.0.0.2", 0))
        free_port = free.getsockname()[1]
        free.close()
        argv = ["serve", "--host", "127.0.0.2", "--port", str(free_port), "--tls-port", str(port)]
        assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"wegent: cannot listen on 127.0.0.2:{port}: Address already in use\n"
    )
    names = certificate_names_of(read_cert(tmp_path / "tls" / "server.crt"))
    assert {"127.0.0.2", "127.0.0.1"} <= names
    assert not (tmp_path / "pgdata").exists()  # refused before the database was touched
