"""Content credentials: signed C2PA 'not for AI training' manifests, read back with the C2PA library.

Trust note: Fixative's default signer is self-signed, so the C2PA reader reports the manifest as
"Valid" (signature and hashes check out) with one failure, ``signingCredential.untrusted``
(the signer is on no trust list). With the identity's own root given as a trust anchor the
same file reads as "Trusted". Both are checked here.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import stat
import struct
import zlib

import c2pa
import numpy as np
import pytest
from PIL import Image

from fixative import identity as identity_module
from fixative import provenance
from fixative.cli import main
from fixative.errors import CredentialsError
from fixative.imageio import encode_image, xmp_packet
from tests.conftest import painting

FORMATS = ["PNG", "JPEG", "WEBP"]
CONTACT = "https://jane.example/ai-policy"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def artwork(fmt: str) -> bytes:
    return encode_image(painting(size=(48, 32)), fmt, xmp=xmp_packet())


def read_store(data: bytes, fmt: str, trust_anchors: str | None = None) -> tuple[dict, str, dict]:
    """(active manifest, validation state, validation results) straight from c2pa.Reader."""
    context = c2pa.Context.from_dict({"trust": {"trust_anchors": trust_anchors}}) if trust_anchors else None
    with c2pa.Reader(provenance.MEDIA_TYPES[fmt], io.BytesIO(data), None, context) as reader:
        return reader.get_active_manifest(), reader.get_validation_state(), reader.get_validation_results()


def assertion(manifest: dict, label: str) -> dict:
    found = [item["data"] for item in manifest["assertions"] if item["label"].startswith(label)]
    assert found, f"no {label} assertion in {[item['label'] for item in manifest['assertions']]}"
    return found[0]


def root_of(identity: identity_module.Identity) -> str:
    """The chain's last certificate: the root a reader would have to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    chain = x509.load_pem_x509_certificates(identity.certificate_chain.encode())
    return chain[-1].public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("fmt", FORMATS)
def test_signed_file_reads_back_with_the_c2pa_reader(home, fmt):
    unsigned = artwork(fmt)
    identity = identity_module.load_identity()
    signed = provenance.add_credentials(unsigned, fmt, identity, creator="Jane Artist", constraint_url=CONTACT)

    manifest, state, results = read_store(signed, fmt)
    entries = assertion(manifest, "cawg.training-mining")["entries"]
    assert set(entries) == {"cawg.ai_training", "cawg.ai_generative_training", "cawg.data_mining",
                            "cawg.ai_inference"}
    assert all(entry == {"use": "notAllowed", "constraint_info": CONTACT} for entry in entries.values())
    actions = assertion(manifest, "c2pa.actions")["actions"]
    edited = [action for action in actions if action["action"] == "c2pa.edited"]
    assert edited and edited[0]["softwareAgent"]["name"] == "Fixative"
    assert assertion(manifest, "cawg.metadata")["dc:creator"] == ["Jane Artist"]
    assert manifest["signature_info"]["common_name"] == identity_module.SELF_SIGNED_NAME
    # self-signed: signature and hashes valid, the signer unrecognised (see the module docstring)
    assert state == "Valid"
    failures = [item["code"] for item in results["activeManifest"]["failure"]]
    assert failures == ["signingCredential.untrusted"]
    success = {item["code"] for item in results["activeManifest"]["success"]}
    assert {"claimSignature.validated", "assertion.dataHash.match"} <= success
    _, trusted_state, trusted_results = read_store(signed, fmt, trust_anchors=root_of(identity))
    assert trusted_state == "Trusted" and trusted_results["activeManifest"]["failure"] == []
    # the manifest adds metadata only: same pixels, XMP opt-out still there
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(signed))), np.asarray(Image.open(io.BytesIO(unsigned))))
    assert provenance.xmp_opts_out(provenance.read_xmp_optout(signed))


def test_without_creator_or_contact_the_entries_are_plain(home):
    signed = provenance.add_credentials(artwork("PNG"), "PNG", identity_module.load_identity())
    manifest, _, _ = read_store(signed, "PNG")
    entries = assertion(manifest, "cawg.training-mining")["entries"]
    assert all(entry == {"use": "notAllowed"} for entry in entries.values())
    assert not [item for item in manifest["assertions"] if item["label"] == "cawg.metadata"]
    found = provenance.read_credentials(signed)
    assert found.opts_out and found.creator is None and found.constraint_info is None


def _change_png_pixel(data: bytes) -> bytes:
    """The same PNG chunks (the manifest's caBX included) with one pixel changed in IDAT."""
    pixels = np.asarray(Image.open(io.BytesIO(data))).copy()
    pixels[3, 3, 0] ^= 0x20
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    new_idat = b"".join(payload for kind, payload in _png_chunks(buffer.getvalue()) if kind == b"IDAT")
    out, wrote = [data[:8]], False
    for kind, payload in _png_chunks(data):
        if kind == b"IDAT":
            if wrote:
                continue
            payload, wrote = new_idat, True
        out.append(struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload)))
    return b"".join(out)


def _png_chunks(data: bytes):
    position = 8
    while position < len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        yield data[position + 4:position + 8], data[position + 8:position + 8 + length]
        position += 12 + length


def _change_jpeg_scan(data: bytes) -> bytes:
    """Flip one bit in the entropy-coded scan: the decoded pixels change, the markers do not."""
    changed = bytearray(data)
    start_of_scan = data.rfind(b"\xff\xda")
    changed[start_of_scan + 40] ^= 0x04
    return bytes(changed)


@pytest.mark.parametrize("fmt,change", [("PNG", _change_png_pixel), ("JPEG", _change_jpeg_scan)])
def test_pixels_changed_after_signing_report_a_hash_mismatch(home, fmt, change):
    signed = provenance.add_credentials(artwork(fmt), fmt, identity_module.load_identity())
    tampered = change(signed)
    before = np.asarray(Image.open(io.BytesIO(signed))).astype(int)
    after = np.asarray(Image.open(io.BytesIO(tampered))).astype(int)
    assert np.abs(before - after).max() > 0, "the test must really change pixels"
    found = provenance.read_credentials(tampered)
    assert found.present and found.validation_state == "Invalid"
    assert "assertion.dataHash.mismatch" in found.failures and found.tampered
    assert "changed after signing" in found.verdict()
    assert provenance.read_credentials(signed).validation_state == "Valid"


def test_identity_is_made_once_and_kept_private(home):
    first = identity_module.load_identity()
    folder = home / "config" / "identity"
    for name in ("key.pem", "certs.pem", "identity.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert identity_module.load_identity() == first
    assert first.kind == "self-signed" and first.algorithm == "es256"
    assert identity_module.reset_identity().private_key != first.private_key
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600


def make_certificates(tmp_path, key_kind: str = "ed25519", leaf_is_ca: bool = False):
    """A root and a signing certificate as an artist's certificate authority would issue them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    root_key = ec.generate_private_key(ec.SECP384R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Art Guild Root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA384()))
    key = ed25519.Ed25519PrivateKey.generate() if key_kind == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Jane Artist")]))
            .issuer_name(root_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=29))
            .add_extension(x509.BasicConstraints(ca=leaf_is_ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, leaf_is_ca, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA384()))
    pem = serialization.Encoding.PEM
    cert_path, key_path = tmp_path / "jane.pem", tmp_path / "jane.key"
    cert_path.write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path, root.public_bytes(pem).decode()


def test_imported_certificate_signs_and_is_trusted_by_its_root(home, tmp_path, capsys):
    cert_path, key_path, root = make_certificates(tmp_path)
    assert main(["identity", "import", str(cert_path), str(key_path)]) == 0
    assert "Jane Artist" in capsys.readouterr().out
    identity = identity_module.load_identity(create=False)
    assert identity.kind == "imported" and identity.algorithm == "ed25519"
    assert stat.S_IMODE((home / "config" / "identity" / "key.pem").stat().st_mode) == 0o600
    signed = provenance.add_optout_credentials(artwork("JPEG"), "JPEG")
    untrusted = provenance.read_credentials(signed)
    assert untrusted.signer == "Jane Artist" and untrusted.validation_state == "Valid"
    trusted = provenance.read_credentials(signed, trust_anchors=root)
    assert trusted.trusted and trusted.failures == [] and trusted.opts_out


def test_import_refuses_a_key_that_does_not_match(home, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert_path, _, _ = make_certificates(tmp_path / "a")
    _, other_key, _ = make_certificates(tmp_path / "b")
    with pytest.raises(CredentialsError, match="does not belong"):
        identity_module.import_identity(cert_path, other_key)
    assert identity_module.load_identity(create=False) is None  # nothing half-imported


def test_import_refuses_a_ca_certificate_as_signer(home, tmp_path):
    cert_path, key_path, _ = make_certificates(tmp_path, key_kind="ec", leaf_is_ca=True)
    with pytest.raises(CredentialsError):
        identity_module.import_identity(cert_path, key_path)
    assert identity_module.load_identity(create=False) is None


def test_identity_show_says_unrecognised_plainly(home, capsys):
    assert main(["identity", "set", "--creator", "Jane Artist", "--contact", CONTACT]) == 0
    assert main(["identity", "show"]) == 0
    out = capsys.readouterr().out
    assert "unrecognised signer" in out and "Jane Artist" in out and CONTACT in out
    settings = json.loads((home / "config" / "credentials.json").read_text())
    assert settings == {"creator": "Jane Artist", "contact": CONTACT}
    assert main(["identity", "set", "--contact", "not a url"]) == 1


def test_inspect_lists_each_signal(home, tmp_path, capsys):
    assert main(["identity", "set", "--creator", "Jane Artist"]) == 0
    signed = tmp_path / "signed.webp"
    signed.write_bytes(provenance.add_optout_credentials(artwork("WEBP"), "WEBP"))
    plain = tmp_path / "plain.png"
    plain.write_bytes(encode_image(painting(size=(48, 32)), "PNG"))
    capsys.readouterr()
    assert main(["inspect", str(signed)]) == 0
    out = capsys.readouterr().out
    assert "XMP opt-out:   yes" in out and "DMI-PROHIBITED" in out
    assert "C2PA training-mining: yes" in out and "ai_training notAllowed" in out
    assert identity_module.SELF_SIGNED_NAME in out and "unrecognised signer" in out and "Jane Artist" in out
    assert "cannot tell without the original" in out
    assert main(["inspect", str(plain), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["xmp"]["opts_out"] is False and report["c2pa"]["present"] is False
    assert report["protection"]["looks_protected"] is None


def test_add_optout_credentials_can_be_turned_off(home):
    data = artwork("PNG")
    assert provenance.add_optout_credentials(data, "PNG", enabled=False) == data
    assert not (home / "config" / "identity").exists()  # no identity made when nothing is signed
    assert not provenance.read_credentials(data).present
