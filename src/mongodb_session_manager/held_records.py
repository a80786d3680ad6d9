"""The Strands records a manager holds for one agent, the restored ones built only when read.

Strands' ``RepositorySessionManager`` keeps a ``SessionMessage`` for every message of an agent
(``_held_records``) and walks them all on every sync to drop those the agent no longer holds. A
restore of a long history needs none of these records up front: the agent gets the message dicts,
and the manager later reads only a few records (the newest, for the next id and a redaction; one a
BidiAgent replaces; the tail a restore checks for an unfinished turn). Building 2,000 of them was
about a fifth of a whole-history restore, so :class:`HeldRecords` keeps the restored entries as
the repository read them and builds a record the first time it is read, then keeps that record
(a caller may change it, as Strands' redaction does, and must find its change again).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

from strands.types.content import Message
from strands.types.session import SessionMessage

from . import documents as d


class HeldRecords(Sequence[SessionMessage]):
    """An agent's records: restored ones (``entries``, built on first read), then those added since.

    ``entries`` are the stored message entries (``message_id``, ``message``, ``redact_message``),
    oldest first; their records carry ``read_at`` as both dates, as a restore always did (Strands
    never reads them back, and a rewrite of a message keeps the stored dates). ``ids``, when given,
    are the entries' ids as stored (entries read by position carry none, see
    ``documents_archive.SEQUENTIAL_IDS``).
    """

    __slots__ = ("_added", "_built", "_entries", "_ids", "_read_at")

    def __init__(
        self,
        entries: Sequence[Mapping[str, Any]] = (),
        read_at: str = "",
        added: Iterable[SessionMessage] = (),
        *,
        ids: Sequence[Any] | None = None,
    ) -> None:
        if ids is not None and len(ids) != len(entries):
            raise ValueError(f"{len(ids)} ids for {len(entries)} restored messages")
        self._entries: Sequence[Mapping[str, Any]] = entries
        self._ids = ids
        self._read_at = read_at
        self._built: dict[int, SessionMessage] = {}
        self._added: list[SessionMessage] = list(added)

    @classmethod
    def of(cls, records: Sequence[SessionMessage]) -> HeldRecords:
        """Records that exist already (a new agent's initial messages, a cut history)."""
        if isinstance(records, HeldRecords):
            return records.copy()
        return cls(added=records)

    def copy(self) -> HeldRecords:
        """Another holder of the same records (built ones shared, so a change to one shows in both)."""
        other = HeldRecords(self._entries, self._read_at, self._added, ids=self._ids)
        other._built = dict(self._built)
        return other

    def __len__(self) -> int:
        return len(self._entries) + len(self._added)

    @overload
    def __getitem__(self, index: int) -> SessionMessage: ...

    @overload
    def __getitem__(self, index: slice) -> list[SessionMessage]: ...

    def __getitem__(self, index: int | slice) -> SessionMessage | list[SessionMessage]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        size = len(self)
        position = index + size if index < 0 else index
        if not 0 <= position < size:
            raise IndexError("record index out of range")
        return self._record(position)

    def __iter__(self) -> Iterator[SessionMessage]:
        for position in range(len(self._entries)):
            yield self._record(position)
        yield from self._added

    def __reversed__(self) -> Iterator[SessionMessage]:
        yield from reversed(self._added)
        for position in range(len(self._entries) - 1, -1, -1):
            yield self._record(position)

    def _record(self, position: int) -> SessionMessage:
        stored = len(self._entries)
        if position >= stored:
            return self._added[position - stored]
        record = self._built.get(position)
        if record is None:
            entry = self._entries[position]
            redacted = entry.get(d.REDACT_MESSAGE) or None
            message_id = int(entry[d.MESSAGE_ID] if self._ids is None else self._ids[position])
            record = SessionMessage(entry[d.MESSAGE], message_id, redacted, self._read_at, self._read_at)
            self._built[position] = record
        return record

    def _restored_messages(self) -> list[Message]:
        """Each restored record's ``to_message()``, in one pass over the entries (records built
        since may have been changed, as a redaction does: theirs win)."""
        redacted, message = d.REDACT_MESSAGE, d.MESSAGE
        out: list[Message] = [entry.get(redacted) or entry[message] for entry in self._entries]
        for position, record in self._built.items():
            out[position] = record.to_message()
        return out

    def messages(self) -> list[Message]:
        """Every record's ``to_message()``, oldest first: what the agent is given."""
        out = self._restored_messages()
        out.extend(record.to_message() for record in self._added)
        return out

    def last(self) -> SessionMessage | None:
        """The newest record, or None when there is none."""
        return self[-1] if len(self) else None

    def append(self, record: SessionMessage) -> None:
        self._added.append(record)

    def discard(self, records: Iterable[SessionMessage]) -> None:
        """Drop these records (by identity) from those added since the restore (a rolled-back turn)."""
        gone = {id(record) for record in records}
        self._added = [record for record in self._added if id(record) not in gone]

    def prune(self, messages: Sequence[Message]) -> None:
        """Keep only the records whose message ``messages`` still holds (Strands' rule: by tracking
        id, or by identity for a message without one), building none of the restored ones."""
        tracking = {message.get("tracking_id") for message in messages} - {None}
        objects = {id(message) for message in messages}

        def held(message: Message) -> bool:
            return id(message) in objects or (bool(tracking) and message.get("tracking_id") in tracking)

        kept = [position for position, message in enumerate(self._restored_messages()) if held(message)]
        if len(kept) != len(self._entries):
            built = self._built
            self._entries = [self._entries[position] for position in kept]
            if self._ids is not None:
                self._ids = [self._ids[position] for position in kept]
            self._built = {new: built[old] for new, old in enumerate(kept) if old in built}
        self._added = [record for record in self._added if held(record.to_message())]
