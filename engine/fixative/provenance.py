"""Signed "not for AI training" content credentials (C2PA) in PNG, JPEG, WebP and TIFF files.

The manifest is written with the official C2PA library (c2pa-python) after the cloak, so the
hash it signs covers the protected pixels. It carries:
- ``cawg.training-mining``: AI training, generative AI training, data mining and AI inference
  all ``notAllowed`` (the Creator Assertions Working Group's assertion; C2PA 1.x called it
  ``c2pa.training-mining``), each with the artist's contact URL as ``constraint_info`` if set;
- ``c2pa.actions``: the image was opened and then edited by Fixative (the protective cloak);
- ``cawg.metadata``: the creator's name (``dc:creator``) when configured.

The cloak is the technical defence against scrapers that ignore the rules; this assertion is the
machine-readable reservation for those that read them (e.g. the EU text-and-data-mining opt-out).
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixative import __version__
from fixative.errors import BadImage, CredentialsError
from fixative.identity import UNTRUSTED_NOTE, Identity

TRAINING_MINING = "cawg.training-mining"
LEGACY_TRAINING_MINING = "c2pa.training-mining"
USES = {
    "cawg.ai_training": "AI training",
    "cawg.ai_generative_training": "generative AI training",
    "cawg.data_mining": "data mining",
    "cawg.ai_inference": "AI inference",
}
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}
EDIT_DESCRIPTION = "Protected against AI style mimicry with an imperceptible cloak (Fixative)"
UNTRUSTED = "signingCredential.untrusted"


@dataclass
class Credentials:
    """What a file's C2PA manifest says about AI use, who signed it, and whether it checks out."""

    present: bool
    uses: dict[str, str] = field(default_factory=dict)
    """cawg.ai_training → notAllowed, ... as found in the training-mining assertion."""
    constraint_info: str | None = None
    creator: str | None = None
    signer: str | None = None
    issuer: str | None = None
    validation_state: str | None = None
    """The library's verdict: Trusted, Valid (signature and hashes fine, signer unrecognised) or Invalid."""
    failures: list[str] = field(default_factory=list)
    """Validation failure codes, e.g. assertion.dataHash.mismatch or signingCredential.untrusted."""
    software: str | None = None

    @property
    def trusted(self) -> bool:
        return self.validation_state == "Trusted"

    @property
    def opts_out(self) -> bool:
        """True when every predefined use is refused (notAllowed, or constrained without more)."""
        return bool(self.uses) and all(self.uses.get(use) in ("notAllowed", "constrained") for use in USES)

    @property
    def tampered(self) -> bool:
        return any(code.endswith(".mismatch") for code in self.failures)

    def verdict(self) -> str:
        """One line for people."""
        if not self.present:
            return "no C2PA manifest"
        if self.validation_state == "Trusted":
            return "valid, signed by a trusted signer"
        if self.validation_state == "Valid":
            return "valid signature and unchanged pixels; " + UNTRUSTED_NOTE.split(":")[0]
        problems = [code for code in self.failures if code != UNTRUSTED] or ["unknown"]
        if self.tampered:
            return "INVALID: the image was changed after signing (" + ", ".join(problems) + ")"
        return "INVALID: " + ", ".join(problems)

    def as_dict(self) -> dict[str, Any]:
        return {"present": self.present, "uses": self.uses, "constraint_info": self.constraint_info,
                "creator": self.creator, "signer": self.signer, "issuer": self.issuer,
                "validation_state": self.validation_state, "trusted": self.trusted, "failures": self.failures,
                "software": self.software, "verdict": self.verdict()}


def _c2pa():
    try:
        import c2pa
    except ImportError as exc:  # a hard dependency, but an engine venv may predate it
        raise CredentialsError("the C2PA library is missing: pip install c2pa-python "
                               "(or leave credentials out with --no-optout-metadata)") from exc
    return c2pa


def manifest_definition(creator: str | None = None, constraint_url: str | None = None,
                        title: str | None = None) -> dict[str, Any]:
    """The manifest Fixative signs, as the C2PA library's JSON definition."""
    entry: dict[str, str] = {"use": "notAllowed"}
    if constraint_url:
        entry["constraint_info"] = constraint_url
    assertions: list[dict[str, Any]] = [
        {"label": TRAINING_MINING, "data": {"entries": {use: dict(entry) for use in USES}}},
        {"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.edited", "description": EDIT_DESCRIPTION,
             "softwareAgent": {"name": "Fixative", "version": __version__}}]}},
    ]
    if creator:
        assertions.append({"label": "cawg.metadata", "data": {
            "@context": {"dc": "http://purl.org/dc/elements/1.1/"}, "dc:creator": [creator]}})
    definition: dict[str, Any] = {"claim_generator_info": [{"name": "Fixative", "version": __version__}],
                                  "assertions": assertions}
    if title:
        definition["title"] = title
    return definition


def add_credentials(encoded: bytes, fmt: str, identity: Identity, creator: str | None = None,
                    constraint_url: str | None = None, title: str | None = None) -> bytes:
    """``encoded`` (a PNG/JPEG/WebP/TIFF file) with a signed C2PA manifest embedded.

    The library records the unsigned file as the parent ingredient (action ``c2pa.opened``), then
    our ``c2pa.edited``; no thumbnail is embedded, so the manifest adds a few kilobytes.
    """
    c2pa = _c2pa()
    media_type = MEDIA_TYPES.get(fmt.upper())
    if media_type is None:
        raise CredentialsError(f"content credentials cannot be written into {fmt} files; "
                               "use PNG, JPEG, WebP or TIFF")
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(identity.algorithm, identity.certificate_chain.encode(),
                                                           identity.private_key.encode(), None))
        with signer, c2pa.Builder(manifest_definition(creator, constraint_url, title), context=context) as builder:
            builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
            signed = io.BytesIO()
            builder.sign(signer, media_type, io.BytesIO(encoded), signed)
    except c2pa.C2paError as exc:
        raise CredentialsError(f"could not sign the content credentials: {exc}") from exc
    finally:
        context.close()
    return signed.getvalue()


def add_optout_credentials(data: bytes, fmt: str, *, enabled: bool = True, title: str | None = None) -> bytes:
    """The encode step's last call: sign with the user's identity and settings (``enabled=False``: as is)."""
    if not enabled:
        return data
    from fixative.identity import load_identity, load_settings

    settings = load_settings()
    identity = load_identity(create=True)
    assert identity is not None
    return add_credentials(data, fmt, identity, creator=settings.creator, constraint_url=settings.contact,
                           title=title)


def check_identity(identity: Identity) -> None:
    """Sign and validate a 1×1 PNG: a certificate the library refuses fails here, with its reason."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    signed = add_credentials(buffer.getvalue(), "PNG", identity)
    found = read_credentials(signed)
    problems = [code for code in found.failures if code != UNTRUSTED]
    if problems:
        raise CredentialsError("the certificate signs, but validators reject it: " + ", ".join(problems))


def read_credentials(source: bytes | str | os.PathLike, trust_anchors: str | None = None) -> Credentials:
    """The C2PA manifest of a file (bytes or path), validated. ``trust_anchors``: extra root certificates (PEM)."""
    c2pa = _c2pa()
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    from fixative.imageio import probe

    fmt, _, _ = probe(data)
    media_type = MEDIA_TYPES.get(fmt)
    if media_type is None:
        raise BadImage(f"cannot read content credentials from {fmt} files")
    context = c2pa.Context.from_dict({"trust": {"trust_anchors": trust_anchors}}) if trust_anchors else None
    try:
        reader = c2pa.Reader.try_create(media_type, io.BytesIO(data), None, context)
        if reader is None:
            return Credentials(present=False)
        with reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        return Credentials(present=True, validation_state="Invalid", failures=[f"unreadable: {exc}"])
    finally:
        if context is not None:
            context.close()
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    failures = [item.get("code", "?") for item in (results.get("activeManifest") or {}).get("failure", [])]
    credentials = Credentials(present=True, validation_state=state, failures=failures)
    signature = manifest.get("signature_info") or {}
    credentials.signer = signature.get("common_name")
    credentials.issuer = signature.get("issuer")
    generators = manifest.get("claim_generator_info") or []
    if generators:
        credentials.software = " ".join(str(generators[0].get(key, "")) for key in ("name", "version")).strip()
    for assertion in manifest.get("assertions", []):
        label, value = assertion.get("label", ""), assertion.get("data") or {}
        if label in (TRAINING_MINING, LEGACY_TRAINING_MINING):
            entries = value.get("entries", value)  # C2PA 1.x put the entries at the top level
            for use, entry in entries.items():
                key = use.replace("c2pa.", "cawg.", 1)
                credentials.uses[key] = entry.get("use", "?")
                credentials.constraint_info = credentials.constraint_info or entry.get("constraint_info")
        elif label == "cawg.metadata":
            creators = value.get("dc:creator")
            if creators:
                credentials.creator = ", ".join(creators) if isinstance(creators, list) else str(creators)
        elif label == "stds.schema-org.CreativeWork" and not credentials.creator:
            authors = value.get("author") or []
            names = [author.get("name") for author in authors if isinstance(author, dict) and author.get("name")]
            credentials.creator = ", ".join(names) or None
    return credentials


_DATA_MINING = re.compile(r'plus:DataMining(?:\s*=\s*"([^"]*)"|\s+rdf:resource="([^"]*)"|\s*>\s*([^<\s]+))')
_TDM_RESERVATION = re.compile(r'tdm:reservation(?:\s*=\s*"([^"]*)"|\s*>\s*([^<\s]+))')


def read_xmp_optout(source: bytes | str | os.PathLike) -> dict[str, str]:
    """The XMP opt-out fields a file carries: PLUS ``DataMining`` and W3C TDMRep ``reservation``.

    Pillow finds the XMP packet in PNG (iTXt), JPEG (APP1), WebP (``XMP `` chunk) and TIFF (tag 700);
    attribute and element spellings are both read (Krita writes one, the CLI the other).
    """
    from PIL import Image, UnidentifiedImageError

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
            if packet is None and image.format == "TIFF":
                packet = image.tag_v2.get(700)
    except (UnidentifiedImageError, OSError) as exc:
        raise BadImage(f"not a readable image ({exc})") from exc
    if isinstance(packet, bytes | bytearray):
        packet = bytes(packet).decode("utf-8", "replace")
    found: dict[str, str] = {}
    if not packet:
        return found
    for name, pattern in (("plus:DataMining", _DATA_MINING), ("tdm:reservation", _TDM_RESERVATION)):
        match = pattern.search(packet)
        if match:
            found[name] = next(group for group in match.groups() if group is not None)
    return found


def xmp_opts_out(fields: dict[str, str]) -> bool:
    """PLUS DMI-PROHIBITED* (any of its variants) or a TDMRep reservation of 1."""
    return "DMI-PROHIBITED" in fields.get("plus:DataMining", "") or fields.get("tdm:reservation") == "1"
