"""A small city CA: the broker's TLS certificate, and optionally each device's client certificate.

The CA's key (EC P-256) lives in the vault's ``ca/`` folder (0600). Its certificate is the
broker's ``cafile`` and every card's ``city-ca.crt``: devices verify the broker's certificate
(which names the broker's host) with it, and with ``broker.client_certs: true`` Mosquitto
(``require_certificate true``) refuses a TLS client without a certificate it signed. Each device
then gets its own key and a certificate whose CN is its id; a revoked device's serial goes on
the CRL the broker reads as ``crlfile``.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.provision.catalogue import write_atomic

CA_YEARS = 20
CLIENT_DAYS = 3650  # a field device lives about ten years; revocation, not expiry, ends it
CRL_DAYS = 365  # an expired CRL makes OpenSSL refuse every client: each sync writes a fresh one


def _name(common_name: str, city: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, city),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CityCA:
    """The CA in ``folder`` (created on first use): ``ca.key`` (0600), ``ca.crt``, ``revoked``."""

    def __init__(self, folder: Path, city: str) -> None:
        self.folder = folder
        self.city = city
        key_path, cert_path = folder / "ca.key", folder / "ca.crt"
        if not key_path.exists():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._create(key_path, cert_path)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.key = key
        self.cert = x509.load_pem_x509_certificate(cert_path.read_bytes())

    def _create(self, key_path: Path, cert_path: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        name = _name(f"{self.city} machimori device CA", self.city)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_atomic(key_path, _pem_key(key).decode("ascii"), mode=0o600)
        write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode(), mode=0o644)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, device: str) -> tuple[bytes, bytes]:
        """A new key and a client certificate for ``device``: (key PEM, certificate PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        return _pem_key(key), self._sign(device, key, ExtendedKeyUsageOID.CLIENT_AUTH, aki)

    def issue_server(self, host: str) -> tuple[bytes, bytes]:
        """A key and a server certificate for the broker at ``host`` (a name or an address)."""
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        san = x509.SubjectAlternativeName([name])
        return _pem_key(key), self._sign(host, key, ExtendedKeyUsageOID.SERVER_AUTH, san)

    def _sign(
        self,
        common_name: str,
        key: ec.EllipticCurvePrivateKey,
        usage: x509.ObjectIdentifier,
        extension: x509.ExtensionType,
    ) -> bytes:
        """A leaf certificate for ``key``, signed by the CA, as PEM."""
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, self.city))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=CLIENT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(extension, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def signed_for(self, cert_pem: bytes, host: str) -> bool:
        """Whether ``cert_pem`` is this CA's server certificate for ``host``."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        if cert.issuer != self.cert.subject:
            return False
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return host in [str(n.value) for n in names]

    def revoke(self, cert_pem: bytes) -> None:
        """Put a certificate's serial on the list the next CRL carries."""
        serial = x509.load_pem_x509_certificate(cert_pem).serial_number
        revoked = self.folder / "revoked"
        known = revoked.read_text().split() if revoked.exists() else []
        if f"{serial:x}" not in known:
            write_atomic(revoked, "".join(f"{s}\n" for s in [*known, f"{serial:x}"]), mode=0o600)

    def crl_pem(self) -> bytes:
        """A CRL of every revoked serial, valid for CRL_DAYS from now."""
        revoked = self.folder / "revoked"
        now = datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - timedelta(hours=1))
            .next_update(now + timedelta(days=CRL_DAYS))
        )
        for serial in revoked.read_text().split() if revoked.exists() else []:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(serial, 16))
                .revocation_date(now - timedelta(hours=1))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
