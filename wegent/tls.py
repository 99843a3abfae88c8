"""HTTPS material: a given certificate and key checked at start, or a self-signed pair kept in
the data dir (API.md §14, Transport).

``WEGENT_TLS=self-signed`` makes :func:`ensure_self_signed` create, on first start, a CA-less
self-signed certificate (ECDSA P-256) for the service's host names and keep it in
``<data_dir>/tls/`` (``server.crt``, ``server.key`` with mode 0600). Later starts reuse it; it is
made again when a name it must cover is missing, when it expires within
:data:`RENEW_BEFORE`, or when the pair does not load. Several processes starting together
(workers) take a file lock, so they agree on one pair.

:func:`certificate_authority_file` names the PEM a client must trust (what ``wegent
kubeconfig`` embeds as ``certificate-authority-data``).
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import re
import secrets
import socket
import ssl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from wegent.settings import Settings

CERT_NAME = "server.crt"
KEY_NAME = "server.key"
VALIDITY = datetime.timedelta(days=825)  # the longest lifetime every TLS client still accepts
RENEW_BEFORE = datetime.timedelta(days=30)
# Names every self-signed certificate covers, besides the machine's host name.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")  # noqa: S104 - names of "every address", not binds
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class TlsError(Exception):
    """The TLS material is unusable; the message is one line for an operator."""


def tls_dir(data_dir: Path) -> Path:
    """Where the self-signed pair is kept."""
    return data_dir / "tls"


def parse_name(raw: str) -> str | None:
    """A subjectAltName as text: an IP address in its normal form or a lowercase DNS name
    (``*.`` allowed as its first label); None when ``raw`` is neither."""
    text = raw.strip().lower().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.removesuffix(".")
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return None
    return name


def certificate_names(hosts: Iterable[str]) -> tuple[str, ...]:
    """Every name a self-signed certificate must cover: the local names, this machine's host
    name, then ``hosts`` (the configured bind host, ``WEGENT_TLS_HOSTS``); a wildcard bind
    address or a name that is not a valid DNS name (a host name with ``_``) is left out."""
    names: dict[str, None] = {}
    for raw in (*LOCAL_NAMES, socket.gethostname(), *hosts):
        if raw.strip() in _WILDCARD_ADDRESSES:
            continue
        name = parse_name(raw)
        if name is not None:
            names[name] = None
    return tuple(names)


def ensure_self_signed(data_dir: Path, names: Sequence[str]) -> tuple[Path, Path]:
    """The kept pair covering ``names``, made first if absent, expiring or not covering them.

    Returns ``(certificate, key)`` paths. Raises :class:`TlsError` when the folder cannot be
    written.
    """
    folder = tls_dir(data_dir)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(folder / ".lock"):
            if not _reusable(cert_path, key_path, names):
                _write_pair(cert_path, key_path, names)
            if key_path.stat().st_mode & 0o077:
                key_path.chmod(0o600)
    except OSError as exc:
        raise TlsError(
            f"WEGENT_TLS=self-signed: cannot keep the certificate in {folder}: "
            f"{exc.strerror or exc}"
        ) from None
    return cert_path, key_path


def check_pair(cert_path: Path, key_path: Path) -> None:
    """A given certificate and key exist, parse, belong together and load into an SSL context.

    Raises :class:`TlsError` naming the setting at fault.
    """
    cert_data = _read("WEGENT_TLS_CERT_FILE", cert_path)
    key_data = _read("WEGENT_TLS_KEY_FILE", key_path)
    try:
        cert = x509.load_pem_x509_certificates(cert_data)[0]
    except ValueError:
        raise TlsError(f"WEGENT_TLS_CERT_FILE: {cert_path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise TlsError(
            f"WEGENT_TLS_KEY_FILE: {key_path} is encrypted; give an unencrypted key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError(f"WEGENT_TLS_KEY_FILE: {key_path} holds no PEM private key") from None
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise TlsError(
            f"WEGENT_TLS_KEY_FILE: {key_path} is not the key of the certificate in {cert_path}"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise TlsError(
            f"WEGENT_TLS_CERT_FILE and WEGENT_TLS_KEY_FILE do not load: {reason}"
        ) from None


def certificate_authority_file(settings: Settings) -> Path | None:
    """The PEM a client must trust to reach this service over HTTPS, or None.

    With ``WEGENT_TLS=self-signed`` it is the generated certificate (CA-less: it is its own
    trust anchor). With a given certificate it is that file when the certificate is
    self-issued; a certificate issued by a CA gives None: clients trust it through their own
    CA store, and pinning a leaf that is renewed elsewhere would break them at renewal. None
    as well when HTTPS is off.
    """
    cert_path = settings.tls_cert_file
    if cert_path is None:
        return None
    if settings.tls_self_signed:
        return cert_path
    return cert_path if trust_anchor(cert_path.read_bytes()) is not None else None


def trust_anchor(pem: bytes) -> bytes | None:
    """The first certificate of ``pem`` as PEM when it is self-issued (its own trust anchor, as
    :func:`certificate_authority_file` decides), else None; None as well when ``pem`` holds no
    certificate. Anything else in ``pem`` (a key, more certificates) is left out."""
    try:
        cert = x509.load_pem_x509_certificates(pem)[0]
    except ValueError:
        return None
    if cert.issuer != cert.subject:
        return None
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_names_of(cert: x509.Certificate) -> set[str]:
    """The subjectAltNames of ``cert`` in the text form of :func:`parse_name`."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {name.lower() for name in sans.get_values_for_type(x509.DNSName)}
    names.update(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    return names


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsError(f"{setting}: no such file: {path}") from None
    except OSError as exc:
        raise TlsError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes, held for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _reusable(cert_path: Path, key_path: Path, names: Sequence[str]) -> bool:
    """The kept pair loads, belongs together, covers ``names`` and is not about to expire."""
    try:
        cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        return False
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc - RENEW_BEFORE <= now or cert.not_valid_before_utc > now:
        return False
    return set(names) <= certificate_names_of(cert)


def self_signed_pair(names: Sequence[str]) -> tuple[bytes, bytes]:
    """A new self-signed certificate for ``names`` and its key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wegent"),
            x509.NameAttribute(NameOID.COMMON_NAME, "wegent self-signed"),
        ]
    )
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))  # clocks that are a little behind
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write_pair(cert_path: Path, key_path: Path, names: Sequence[str]) -> None:
    cert_pem, key_pem = self_signed_pair(names)
    _replace(key_path, key_pem, 0o600)
    _replace(cert_path, cert_pem, 0o644)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically, created with ``mode`` (never wider first)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
