"""Machine-readable "no AI training" metadata (XMP) written into exported PNG, JPEG and WebP.

Perturbations protect against scrapers that ignore the rules; the opt-out tells the ones that
read them (PLUS DataMining, W3C TDMRep) that the artist reserves text-and-data-mining rights.
"""

from __future__ import annotations

import struct

from ._common import fixative_png

XMP_KEYWORD = "XML:com.adobe.xmp"
OPT_OUT_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    '  <rdf:Description rdf:about=""\n'
    '    xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/"\n'
    '    xmlns:tdm="http://www.w3.org/ns/tdmrep/"\n'
    '    plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"\n'
    '    tdm:reservation="1"/>\n'
    ' </rdf:RDF>\n'
    '</x:xmpmeta>\n'
    '<?xpacket end="w"?>')
OPT_OUT_MARKER = "DMI-PROHIBITED-AIMLTRAINING"


class MetadataError(ValueError):
    """The file is not the kind of PNG/JPEG/WebP this module can add metadata to."""


def png_chunks() -> list[bytes]:
    return [fixative_png.itxt_chunk(XMP_KEYWORD, OPT_OUT_XMP)]


def add_to_jpeg(data: bytes) -> bytes:
    """An APP1 XMP segment right after the JPEG's start marker (and its JFIF APP0, if any)."""
    if data[:2] != b"\xff\xd8":
        raise MetadataError("Not a JPEG file.")
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + OPT_OUT_XMP.encode("utf-8")
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    position = 2
    if data[2:4] == b"\xff\xe0":  # keep JFIF first, as readers expect
        position = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:position] + segment + data[position:]


def add_to_webp(data: bytes, width: int, height: int) -> bytes:
    """An ``XMP `` chunk, turning a simple WebP into the extended (VP8X) layout if needed."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MetadataError("Not a WebP file.")
    chunks = []
    position = 12
    while position + 8 <= len(data):
        kind = data[position:position + 4]
        size = struct.unpack("<I", data[position + 4:position + 8])[0]
        chunks.append([kind, data[position + 8:position + 8 + size]])
        position += 8 + size + (size & 1)
    if not chunks:
        raise MetadataError("The WebP file has no image data.")
    if chunks[0][0] != b"VP8X":
        flags = 0x10 if chunks[0][0] == b"VP8L" else 0  # lossless WebP may carry alpha
        canvas = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
        chunks.insert(0, [b"VP8X", bytes([flags, 0, 0, 0]) + canvas])
    header = bytearray(chunks[0][1])
    header[0] |= 0x04  # the XMP flag
    chunks[0][1] = bytes(header)
    chunks = [chunk for chunk in chunks if chunk[0] != b"XMP "]
    chunks.append([b"XMP ", OPT_OUT_XMP.encode("utf-8")])
    body = b"".join(kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")
                    for kind, payload in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
