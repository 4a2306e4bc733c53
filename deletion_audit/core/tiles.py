"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): paths, widths and entry bundles.

A tile at level ``L`` and index ``N`` holds up to 256 hashes of Merkle level ``8·L``, starting
at node ``256·N``; level-0 tiles pair with entry bundles of the same leaves.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from deletion_audit.core.errors import FormatError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63 // TILE_HEIGHT
_GROUP = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")


@dataclass(frozen=True)
class TileRef:
    level: int | None  # None for an entry bundle
    index: int
    width: int | None  # None for a full tile

    def path(self) -> str:
        head = "tile/entries" if self.level is None else f"tile/{self.level}"
        tail = "" if self.width is None else f".p/{self.width}"
        return f"{head}/{encode_index(self.index)}{tail}"


def encode_index(index: int) -> str:
    """1234067 → ``x001/x234/067``."""
    if index < 0:
        raise FormatError("tile index is negative")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int, index: int, width: int | None = None) -> str:
    return TileRef(level, index, width).path()


def entries_path(index: int, width: int | None = None) -> str:
    return TileRef(None, index, width).path()


def parse_tile_path(path: str) -> TileRef:
    """Parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` strictly."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise FormatError("a tile path is tile/<level>/<index> or tile/entries/<index>")
    level: int | None
    if parts[1] == "entries":
        level = None
    elif re.fullmatch(r"[0-9]", parts[1]) and int(parts[1]) <= MAX_LEVEL:
        level = int(parts[1])
    else:
        raise FormatError(f"tile level {parts[1]!r} is not 0..{MAX_LEVEL} or 'entries'")
    rest = parts[2:]
    width: int | None = None
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        width_text = rest[-1]
        if not re.fullmatch(r"[1-9][0-9]{0,2}", width_text) or int(width_text) >= TILE_WIDTH:
            raise FormatError(f"partial tile width {width_text!r} is not 1..255")
        width = int(width_text)
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or len(rest) > 7:
        raise FormatError("tile index is missing or too long")
    if not all(_GROUP.fullmatch(g) for g in rest[:-1]) or not _LAST.fullmatch(rest[-1]):
        raise FormatError("tile index must be 3-digit groups, 'x' before all but the last")
    index = int("".join(g.lstrip("x") for g in rest))
    if encode_index(index) != "/".join(rest):  # leading zero groups such as x000/001
        raise FormatError("tile index is not in its canonical form")
    return TileRef(level, index, width)


def tile_width_for(level: int, index: int, size: int) -> int | None:
    """Width of tile (level, index) in a tree of ``size`` leaves: 256, partial, or None."""
    nodes_at_level = size >> (TILE_HEIGHT * level)
    start = index * TILE_WIDTH
    if nodes_at_level >= start + TILE_WIDTH:
        return TILE_WIDTH
    if nodes_at_level > start:
        return nodes_at_level - start
    return None


def encode_entry_bundle(entries: list[bytes]) -> bytes:
    out = bytearray()
    for entry in entries:
        if len(entry) > 0xFFFF:
            raise FormatError("an entry longer than 65535 bytes cannot be bundled")
        out += struct.pack(">H", len(entry)) + entry
    return bytes(out)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    entries = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise FormatError("entry bundle ends inside a length prefix")
        (length,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if pos + length > len(data):
            raise FormatError("entry bundle ends inside an entry")
        entries.append(data[pos : pos + length])
        pos += length
    return entries
