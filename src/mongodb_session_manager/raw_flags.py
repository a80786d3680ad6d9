"""What a restore's raw BSON holds, found by byte searches in C instead of a walk over decoded values.

A restore decodes thousands of messages with the driver's C decoder and then touches them only if
something needs it: legacy values :func:`.documents_values.from_bson` rewrites, markers of blocks stored
out of line (:mod:`.blobs`), tool blocks Strands pairs up. Searching the raw bytes for those
markers costs about half a millisecond per marker and megabyte; walking the decoded values costs
several. A bucket records what its messages hold when it is written (``holds``), so a restore
searches only the session document's recent part; a rewrite of a message in a bucket removes the
record, and that bucket is searched again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import documents_values as dv
from .blobs import has_markers

#: The bucket field recording what its messages hold (absent: unknown, search the bytes).
HOLDS = "holds"
_FIELDS = ("repair", "blobs", "tools")


@dataclass(frozen=True)
class RawFlags:
    """Whether some raw BSON holds values to repair, out-of-line block markers, tool blocks."""

    repair: bool = False
    blobs: bool = False
    tools: bool = False

    @classmethod
    def of(cls, raw: bytes) -> RawFlags:
        return cls(dv.needs_repair(raw), has_markers(raw), dv.has_tool_blocks(raw))

    @classmethod
    def of_messages(cls, raws: Iterable[bytes]) -> RawFlags:
        # A marker lies inside one message's bytes: joining them can add a false "yes", never lose one.
        return cls.of(b"".join(raws))

    @classmethod
    def recorded(cls, holds: Any) -> RawFlags | None:
        """The flags a bucket recorded, or None when it recorded none (or something unexpected)."""
        if not isinstance(holds, Mapping) or not all(isinstance(holds.get(k), bool) for k in _FIELDS):
            return None
        return cls(**{k: holds[k] for k in _FIELDS})

    def record(self) -> dict[str, bool]:
        return {k: getattr(self, k) for k in _FIELDS}

    def __or__(self, other: RawFlags) -> RawFlags:
        return RawFlags(self.repair or other.repair, self.blobs or other.blobs, self.tools or other.tools)
