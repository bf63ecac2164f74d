"""Who signs Fixative's content credentials: the artist's own certificate, or a per-user stand-in.

C2PA signatures need an X.509 certificate chain and its private key. An artist who has a
certificate from a C2PA-recognised authority imports it (``fixative identity import CERT KEY``);
until then Fixative makes a per-user self-signed identity on first use: a throw-away CA issues
one end-entity signing certificate and the CA key is discarded, so nothing else can be issued
under it. Readers verify the signature and the file's integrity either way, but show a
self-signed signer as *unrecognised*: only a certificate on the C2PA trust list says who signed.

Everything lives in ``paths.identity_dir()`` with mode 0600; the creator name and contact URL in
``paths.credentials_settings_file()``. The engine never takes keys over HTTP: it signs with this.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fixative import paths
from fixative.errors import CredentialsError

KEY_FILE = "key.pem"
CERT_FILE = "certs.pem"
INFO_FILE = "identity.json"
SELF_SIGNED_NAME = "Fixative user (self-signed)"
SELF_SIGNED_ORG = "Fixative self-signed identity (not verified)"
VALIDITY_DAYS = 5 * 365
DOCUMENT_SIGNING_EKU = "1.3.6.1.5.5.7.3.36"
UNTRUSTED_NOTE = ("unrecognised signer: this self-signed certificate is on no C2PA trust list, so readers "
                  "verify the signature and that the pixels are unchanged, but cannot confirm who signed. "
                  "Import a certificate from a C2PA-recognised authority with 'fixative identity import "
                  "CERT KEY' to be shown by name.")


@dataclass(frozen=True)
class Identity:
    """A signing key with its certificate chain (end-entity first), as PEM text."""

    certificate_chain: str
    private_key: str
    algorithm: str
    """c2pa-python's name: es256, es384, es512, ps256 or ed25519."""
    kind: str
    """'self-signed' (made by Fixative) or 'imported' (the artist's own)."""

    def signer_name(self) -> str:
        return _leaf(self.certificate_chain).subject.rfc4514_string()

    def issuer_name(self) -> str:
        return _leaf(self.certificate_chain).issuer.rfc4514_string()

    def not_after(self) -> dt.datetime:
        return _leaf(self.certificate_chain).not_valid_after_utc


@dataclass(frozen=True)
class CredentialSettings:
    """What every signed manifest says besides the opt-out: who made the work, where to ask."""

    creator: str | None = None
    contact: str | None = None


# -- settings --------------------------------------------------------------------------------------
def load_settings() -> CredentialSettings:
    path = paths.credentials_settings_file()
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return CredentialSettings()
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"{path} is unreadable ({exc}); fix or delete it") from exc
    return CredentialSettings(creator=values.get("creator") or None, contact=values.get("contact") or None)


def save_settings(settings: CredentialSettings) -> Path:
    path = paths.credentials_settings_file()
    _write_private(path, json.dumps({"creator": settings.creator, "contact": settings.contact}, indent=2))
    return path


# -- the identity ----------------------------------------------------------------------------------
def load_identity(create: bool = True) -> Identity | None:
    """The configured identity; a new self-signed one on first use (``create``), else None."""
    folder = paths.identity_dir()
    key_path, cert_path, info_path = folder / KEY_FILE, folder / CERT_FILE, folder / INFO_FILE
    if key_path.exists() and cert_path.exists():
        try:
            info = json.loads(info_path.read_text()) if info_path.exists() else {}
            identity = Identity(cert_path.read_text(), key_path.read_text(),
                                info.get("algorithm") or _algorithm_for(_load_key(key_path.read_bytes())),
                                info.get("kind", "imported"))
        except (OSError, ValueError) as exc:
            raise CredentialsError(f"the signing identity in {folder} is unreadable ({exc}); "
                                   "import one again or delete the folder to make a new one") from exc
        if identity.kind == "self-signed" and identity.not_after() < _now() + dt.timedelta(days=1):
            return _store(*_make_self_signed(), kind="self-signed")  # expired: a fresh stand-in
        return identity
    if not create:
        return None
    return _store(*_make_self_signed(), kind="self-signed", replace=False)


def import_identity(cert_file: str | os.PathLike, key_file: str | os.PathLike) -> Identity:
    """Check and copy the artist's certificate chain and key into Fixative's identity folder.

    The key must match the first certificate; the C2PA library then signs a test image so a
    certificate it would refuse (a CA, wrong key usage, expired) fails here, not at export time.
    """
    from cryptography import x509

    try:
        cert_bytes, key_bytes = Path(cert_file).read_bytes(), Path(key_file).read_bytes()
    except OSError as exc:
        raise CredentialsError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        chain = x509.load_pem_x509_certificates(cert_bytes)
    except ValueError as exc:
        raise CredentialsError(f"{cert_file} holds no PEM certificate ({exc})") from exc
    key = _load_key(key_bytes)
    if chain[0].public_key().public_bytes(*_spki()) != key.public_key().public_bytes(*_spki()):
        raise CredentialsError(f"the key in {key_file} does not belong to the first certificate in {cert_file}; "
                               "put the signing (end-entity) certificate first")
    pem_chain = "".join(cert.public_bytes(_pem()).decode() for cert in chain)
    identity = Identity(pem_chain, _key_pem(key), _algorithm_for(key), "imported")
    from fixative.provenance import check_identity

    try:
        check_identity(identity)
    except CredentialsError as exc:
        raise CredentialsError(f"{exc}. C2PA signs only with an end-entity certificate (not a CA) that "
                               "allows digitalSignature, has an extended key usage such as emailProtection "
                               "or documentSigning, is within its validity dates and comes with its chain") from exc
    return _store(identity.certificate_chain, identity.private_key, identity.algorithm, kind="imported")


def reset_identity() -> Identity:
    """Replace whatever identity is configured by a fresh self-signed one."""
    return _store(*_make_self_signed(), kind="self-signed")


# -- helpers ---------------------------------------------------------------------------------------
def _store(chain: str, key: str, algorithm: str, kind: str, replace: bool = True) -> Identity:
    """Write the three files into a fresh folder, then rename it into place in one step.

    So two processes making the first identity at once (batch workers) never mix one's key with
    the other's certificate: the second rename fails and that process uses the winner's files.
    """
    folder = paths.identity_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".identity-", dir=folder.parent))  # mode 0700
    try:
        _write_private(staging / KEY_FILE, key)
        _write_private(staging / CERT_FILE, chain)
        _write_private(staging / INFO_FILE, json.dumps({"kind": kind, "algorithm": algorithm}))
        if replace and folder.exists():
            retired = Path(tempfile.mkdtemp(prefix=".identity-old-", dir=folder.parent))
            os.replace(folder, retired / "identity")
            shutil.rmtree(retired, ignore_errors=True)
        try:
            os.rename(staging, folder)
        except OSError:
            if replace or not (folder / KEY_FILE).exists():
                raise
            return load_identity(create=False) or Identity(chain, key, algorithm, kind)
    except OSError as exc:
        raise CredentialsError(f"cannot write the signing identity to {folder}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Identity(chain, key, algorithm, kind)


def _write_private(path: Path, text: str) -> None:
    """Write with mode 0600 from the first byte (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CredentialsError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _make_self_signed() -> tuple[str, str, str]:
    """(chain PEM, key PEM, 'es256'): a one-off CA issues a P-256 signing certificate, then is dropped.

    C2PA validators refuse a self-signed end-entity certificate, hence the two levels. The
    extensions are the ones the C2PA certificate profile asks for: a non-CA leaf with
    digitalSignature key usage, an extended key usage (email protection, document signing) and
    key identifiers linking it to its issuer.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _now()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fixative self-signed root"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORG)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SELF_SIGNED_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, SELF_SIGNED_ORG)])
    leaf = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS - 1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION,
                                                  x509.ObjectIdentifier(DOCUMENT_SIGNING_EKU)]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = leaf.public_bytes(_pem()).decode() + ca.public_bytes(_pem()).decode()
    return chain, _key_pem(key), "es256"


def _load_key(data: bytes):
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise CredentialsError("the private key is password-protected; export it without a password "
                               "(Fixative stores it readable only by you, mode 0600)") from exc
    except ValueError as exc:
        raise CredentialsError(f"not a PEM private key ({exc})") from exc


def _algorithm_for(key) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in curves:
            return curves[key.curve.name]
    raise CredentialsError("unsupported key type: C2PA signs with EC P-256/P-384/P-521, RSA-PSS or Ed25519")


def _key_pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _leaf(chain_pem: str):
    from cryptography import x509

    return x509.load_pem_x509_certificates(chain_pem.encode())[0]


def _pem():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.PEM


def _spki():
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
