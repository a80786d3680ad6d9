"""Large content blocks stored out of line, in GridFS, and referenced from their message.

A tool that returns a 1 MB document, or an image a user uploads, would otherwise take a
megabyte of the session document (or of a bucket) with it: every write of the session would
rewrite it, and one message over 16 MB could not be stored at all. Blocks whose encoded size
passes ``ArchivePolicy.blob_bytes`` are therefore uploaded to the GridFS bucket
``<collection>_blobs`` (chunks of 4 MiB, so a 1 MB block costs two inserts) before the write that
stores their message, and replaced in it by a small marker::

    {"__msm_blob__": {"id": ObjectId, "bytes": 1048600}}

The blob holds the block's stored form (BSON, exactly as it would have been embedded), so reading
puts it back byte for byte and every other rule of the stored shape (``documents_values.storable``, the
repair markers) applies unchanged. Readers resolve markers with one batched query on the chunks
collection; a message without markers costs nothing (the raw bytes are checked in C).

Which blocks: the top-level blocks of a message's ``content``, and the blocks inside a
``toolResult``'s ``content`` (so the ``toolUseId`` and status stay in the message, visible to every
query). A blob belongs to its session (``metadata.session_id``): ``delete_session`` and purges
remove it, and a write that fails after uploading deletes what it uploaded.

A blob is deleted only after no stored message refers to it (the rewrite, purge or deletion is
written first), so a reader that finds a referenced blob missing either raced that write (the
document it read is already outdated: :class:`ConcurrentModificationError`, read again) or meets
data lost outside the library (the session still refers to it: :class:`MissingBlobError`, which no
retry fixes). Readers that know the session tell the two apart with one more read of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from gridfs import GridFSBucket

from . import documents as d
from . import documents_archive as da
from .errors import ConcurrentModificationError, MissingBlobError, SessionStoreError

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

logger = logging.getLogger(__name__)

BLOB_MARKER = "__msm_blob__"
#: Raw-BSON pattern of a marker key: a reply without it has nothing to resolve.
BLOB_MARKER_BYTES = BLOB_MARKER.encode() + b"\x00"
BLOBS_SUFFIX = "_blobs"
#: GridFS chunk size: large enough that a typical large block is one chunk, far below 16 MB.
CHUNK_BYTES = 4 * 1024 * 1024


def blobs_bucket_name(collection_name: str) -> str:
    return f"{collection_name}{BLOBS_SUFFIX}"


def is_marker(block: Any) -> bool:
    return isinstance(block, Mapping) and BLOB_MARKER in block and len(block) == 1


def has_markers(raw: bytes) -> bool:
    return BLOB_MARKER_BYTES in raw


def _estimate(block: Any) -> int:
    """A cheap lower bound of a block's size, so only candidates are encoded to be measured."""
    return d.approximate_size(block)


def externalize_message(
    message: Mapping[str, Any], threshold: int, upload: Any
) -> tuple[dict[str, Any] | None, list[ObjectId]]:
    """The stored ``message`` with every block over ``threshold`` replaced by a marker.

    ``upload(data: bytes) -> ObjectId`` stores one encoded block. Returns ``(None, [])`` when no
    block is that large (the caller keeps the original); never changes ``message`` itself, which
    may share its lists with the agent's in-memory messages.
    """
    content = message.get("content")
    if not isinstance(content, list) or _estimate(content) <= threshold:
        return None, []
    uploaded: list[ObjectId] = []

    def swap(block: Any) -> Any:
        if not isinstance(block, Mapping) or is_marker(block) or _estimate(block) <= threshold:
            return block
        data = bson.encode({"b": block}, codec_options=d.CODEC_OPTIONS)
        if len(data) <= threshold:
            return block
        blob_id = upload(data)
        uploaded.append(blob_id)
        return {BLOB_MARKER: {"id": blob_id, "bytes": len(data)}}

    new_content: list[Any] = []
    for block in content:
        result = block.get("toolResult") if isinstance(block, Mapping) else None
        if isinstance(result, Mapping) and isinstance(result.get("content"), list):
            inner = [swap(b) for b in result["content"]]
            if any(a is not b for a, b in zip(inner, result["content"], strict=True)):
                block = {**block, "toolResult": {**result, "content": inner}}
            new_content.append(block)
        else:
            new_content.append(swap(block))
    if not uploaded:
        return None, []
    return {**message, "content": new_content}, uploaded


def marker_ids(messages: Iterable[Mapping[str, Any]]) -> list[ObjectId]:
    """Ids of every blob the stored messages (``{message: {...}}`` documents) refer to."""
    ids: list[ObjectId] = []
    for stored in messages:
        for field in (d.MESSAGE, d.REDACT_MESSAGE):
            for block in _blocks(stored.get(field)):
                if is_marker(block):
                    ids.append(block[BLOB_MARKER]["id"])
    return ids


def _blocks(message: Any) -> Iterable[Any]:
    content = message.get("content") if isinstance(message, Mapping) else None
    for block in content if isinstance(content, list) else []:
        yield block
        result = block.get("toolResult") if isinstance(block, Mapping) else None
        if isinstance(result, Mapping) and isinstance(result.get("content"), list):
            yield from result["content"]


def resolve_messages(messages: list[Any], blocks: Mapping[Any, Any]) -> list[Any]:
    """The stored messages with markers replaced by their blocks (new objects where anything changed)."""

    def put_back(message: Any) -> Any:
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            return message
        new_content = []
        for block in content:
            if is_marker(block):
                block = blocks[block[BLOB_MARKER]["id"]]
            else:
                result = block.get("toolResult") if isinstance(block, Mapping) else None
                if isinstance(result, Mapping) and isinstance(result.get("content"), list):
                    inner = [blocks[b[BLOB_MARKER]["id"]] if is_marker(b) else b for b in result["content"]]
                    block = {**block, "toolResult": {**result, "content": inner}}
            new_content.append(block)
        return {**message, "content": new_content}

    out = []
    for stored in messages:
        stored = dict(stored)
        for field in (d.MESSAGE, d.REDACT_MESSAGE):
            if isinstance(stored.get(field), Mapping):
                stored[field] = put_back(stored[field])
        out.append(stored)
    return out


_indexed: set[tuple[int, str, str]] = set()
_CHUNK_ORDER = [("files_id", 1), ("n", 1)]


def _chunks_query(ids: Iterable[ObjectId]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Filter and projection of the one query that reads every chunk of these blobs."""
    return {"files_id": {"$in": list(set(ids))}}, {"_id": 0, "files_id": 1, "data": 1}


def _chunk_parts(chunks: Iterable[Mapping[str, Any]]) -> dict[ObjectId, list[bytes]]:
    """Each blob's chunk data (the chunks come in ``files_id, n`` order)."""
    parts: dict[ObjectId, list[bytes]] = {}
    for chunk in chunks:
        parts.setdefault(chunk["files_id"], []).append(bytes(chunk["data"]))
    return parts


def _decode_parts(parts: Mapping[ObjectId, list[bytes]], codec_options: Any) -> dict[ObjectId, Any]:
    return {blob_id: bson.decode(b"".join(c), codec_options=codec_options)["b"] for blob_id, c in parts.items()}


#: Raw documents for the reference check: searched as bytes, never decoded.
_RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)


_Read = tuple[dict[str, Any], dict[str, Any]]


def _reference_reads(session_id: str) -> tuple[_Read, _Read]:
    """``(filter, projection)`` of the session document and of its buckets: where its markers live."""
    return ({d.ID: session_id}, {d.AGENTS: 1}), ({d.SESSION_ID: session_id}, {d.MESSAGES: 1})


def _reference_collections(database: Any, collection_name: str) -> tuple[Any, Any]:
    """The session collection and its buckets, reading raw documents (sync or async database alike)."""
    return (
        database.get_collection(collection_name, codec_options=_RAW),
        database.get_collection(da.buckets_collection_name(collection_name), codec_options=_RAW),
    )


def marker_reference(blob_id: ObjectId) -> bytes:
    """How a marker's id appears in raw BSON: an ObjectId element named ``id`` holding these 12 bytes."""
    return b"\x07id\x00" + blob_id.binary


def still_referenced(missing: Iterable[ObjectId], raws: Iterable[bytes]) -> set[ObjectId]:
    """The ``missing`` blobs that the raw documents (the session as stored now) still refer to."""
    wanted = {blob_id: marker_reference(blob_id) for blob_id in missing}
    found: set[ObjectId] = set()
    for raw in raws:
        found.update(blob_id for blob_id, pattern in wanted.items() if blob_id not in found and pattern in raw)
    return found


def missing_blocks_error(
    bucket: str, missing: set[ObjectId], session_id: str | None, referenced: set[ObjectId] | None
) -> SessionStoreError:
    """The error for blobs a read did not find: a race the reader can retry, or data lost for good.

    ``referenced``: the missing blobs the session still refers to when read again (``None`` when the
    reader does not know its session and could not check). None of them any more: a purge, deletion,
    import or rewrite removed them after this reader read their markers, and reading again succeeds.
    """
    if referenced is not None and not referenced:
        return ConcurrentModificationError(
            f"{len(missing)} out-of-line content block(s) were deleted while the session was read (it was "
            "purged, deleted, replaced or a message was rewritten meanwhile): read it again",
            session_id=session_id,
        )
    lost = sorted(referenced or missing)
    shown = ", ".join(str(blob_id) for blob_id in lost[:3]) + (", ..." if len(lost) > 3 else "")
    return MissingBlobError(
        f"{len(lost)} out-of-line content block(s) the stored messages refer to are missing from the GridFS "
        f"bucket {bucket!r} ({shown}): they were deleted outside the library, and reading again will not bring "
        "them back (restore the bucket from a backup, or rewrite or purge the messages)",
        session_id=session_id,
    )


def externalize_update(update: dict[str, Any], paths: Iterable[str], threshold: int, uploader: Any) -> list[ObjectId]:
    """Externalize, in place, the large blocks of the stored messages an update writes.

    ``paths`` are the update's keys holding message documents: a ``$push`` ``$each`` list (the
    messages are dicts built for this write, so replacing their ``message`` field is safe), or a
    ``$set`` of one message body. ``uploader(message_id)`` gives the upload function for a message.
    """
    uploaded: list[ObjectId] = []
    pushed = update.get("$push") or {}
    for path in paths:
        value = pushed.get(path)
        for doc in value.get("$each", []) if isinstance(value, Mapping) else []:
            for field in (d.MESSAGE, d.REDACT_MESSAGE):
                if isinstance(doc.get(field), Mapping):
                    new, ids = externalize_message(doc[field], threshold, uploader(int(doc[d.MESSAGE_ID])))
                    if new is not None:
                        doc[field] = new
                        uploaded += ids
    return uploaded


class BlobStore:
    """The GridFS bucket of one session collection: upload, batched read, deletion by session."""

    def __init__(self, database: Database[Any], collection_name: str) -> None:
        self.name = blobs_bucket_name(collection_name)
        self._database = database
        self._collection_name = collection_name
        self._bucket = GridFSBucket(database, bucket_name=self.name, chunk_size_bytes=CHUNK_BYTES)

    @property
    def files(self) -> Collection[Any]:
        return self._database[f"{self.name}.files"]

    @property
    def chunks(self) -> Collection[Any]:
        return self._database[f"{self.name}.chunks"]

    def uploader(self, session_id: str, agent_id: str, message_id: int) -> Any:
        metadata = {d.SESSION_ID: session_id, "agent_id": agent_id, d.MESSAGE_ID: message_id}

        def upload(data: bytes) -> ObjectId:
            self._ensure_index()
            blob_id = ObjectId()
            self._bucket.upload_from_stream_with_id(
                blob_id, f"{session_id}/{agent_id}/{message_id}", data, metadata=metadata
            )
            return blob_id

        return upload

    def _ensure_index(self) -> None:
        """``metadata.session_id`` (+ agent, message) on the files: deletion by session, clean-up by message."""
        key = (id(self._database.client), self._database.name, self.name)
        if key in _indexed:
            return
        self.files.create_index(
            [(f"metadata.{d.SESSION_ID}", 1), ("metadata.agent_id", 1), (f"metadata.{d.MESSAGE_ID}", 1)]
        )
        _indexed.add(key)

    def superseded(self, session_id: str, agent_id: str, message_id: int, keep: Iterable[ObjectId]) -> None:
        """Delete the blobs of a rewritten message that its new version no longer refers to.

        A redaction must not leave the original text behind in GridFS.
        """
        query = {
            f"metadata.{d.SESSION_ID}": session_id,
            "metadata.agent_id": agent_id,
            f"metadata.{d.MESSAGE_ID}": message_id,
            d.ID: {"$nin": list(keep)},
        }
        self.delete(f[d.ID] for f in self.files.find(query, {d.ID: 1}))

    def read_blocks(
        self, ids: list[ObjectId], codec_options: Any = d.CODEC_OPTIONS, *, session_id: str | None = None
    ) -> dict[ObjectId, Any]:
        """Every block, decoded, in one query on the chunks (plus ``getMore`` per 16 MB of data).

        A missing block is :class:`MissingBlobError`, or :class:`ConcurrentModificationError` when
        ``session_id`` is given and the session, read again, no longer refers to it (the read raced
        a purge, deletion or rewrite). Without ``session_id`` that cannot be checked.
        """
        if not ids:
            return {}
        cursor = self.chunks.find(*_chunks_query(ids)).sort(_CHUNK_ORDER)
        parts = _chunk_parts(cursor)
        missing = set(ids) - parts.keys()
        if missing:
            referenced = None if session_id is None else self._still_referenced(session_id, missing)
            raise missing_blocks_error(self.name, missing, session_id, referenced)
        return _decode_parts(parts, codec_options)

    def _still_referenced(self, session_id: str, missing: set[ObjectId]) -> set[ObjectId]:
        """Which ``missing`` blobs the session refers to now (its document and its buckets, read raw)."""
        (doc_filter, doc_projection), (bucket_filter, bucket_projection) = _reference_reads(session_id)
        sessions, buckets = _reference_collections(self._database, self._collection_name)
        doc = sessions.find_one(doc_filter, doc_projection)
        raws = [doc.raw] if doc is not None else []
        raws += [bucket.raw for bucket in buckets.find(bucket_filter, bucket_projection)]
        return still_referenced(missing, raws)

    def resolve(
        self, messages: list[Any], codec_options: Any = d.CODEC_OPTIONS, *, session_id: str | None = None
    ) -> list[Any]:
        """Stored messages with their markers resolved (the same list when there are none)."""
        ids = marker_ids(messages)
        if not ids:
            return messages
        return resolve_messages(messages, self.read_blocks(ids, codec_options, session_id=session_id))

    def delete(self, ids: Iterable[ObjectId]) -> None:
        ids = list(ids)
        if ids:
            self.chunks.delete_many({"files_id": {"$in": ids}})
            self.files.delete_many({d.ID: {"$in": ids}})

    def delete_session(self, session_id: str, *, keep: Iterable[ObjectId] = ()) -> int:
        """Delete the session's blobs (except ``keep``: an import that replaced the session wrote those)."""
        query: dict[str, Any] = {f"metadata.{d.SESSION_ID}": session_id}
        keep = list(keep)
        if keep:
            query[d.ID] = {"$nin": keep}
        ids = [f[d.ID] for f in self.files.find(query, {d.ID: 1})]
        self.delete(ids)
        return len(ids)


# ---- whole documents (export, migration) and the viewer's timeline rows --------------------------------------

_HISTORY_FIELDS = (d.MESSAGES, "abandoned_messages")


def session_marker_ids(doc: Mapping[str, Any]) -> list[ObjectId]:
    """Blob ids referred to by every agent's messages (and set-aside messages) of a session document."""
    ids: list[ObjectId] = []
    for agent in (doc.get(d.AGENTS) or {}).values():
        if isinstance(agent, Mapping):
            for field in _HISTORY_FIELDS:
                ids += marker_ids(agent.get(field) or [])
    return ids


def resolve_session_document(doc: dict[str, Any], blocks: Mapping[Any, Any]) -> dict[str, Any]:
    """The session document with every marker in its histories replaced (a new document)."""
    agents = {}
    for aid, agent in (doc.get(d.AGENTS) or {}).items():
        if isinstance(agent, Mapping):
            agent = dict(agent)
            for field in _HISTORY_FIELDS:
                if isinstance(agent.get(field), list):
                    agent[field] = resolve_messages(agent[field], blocks)
        agents[aid] = agent
    return {**doc, d.AGENTS: agents}


def resolve_whole_session(database: Database[Any], collection_name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """``resolve_session_document`` reading the blocks from the collection's GridFS bucket.

    A block deleted by a purge, deletion or rewrite after ``doc`` was read is a
    :class:`ConcurrentModificationError` (the caller reads ``doc`` again); one the session still
    refers to is a :class:`MissingBlobError`.
    """
    ids = session_marker_ids(doc)
    if not ids:
        return doc
    sid = doc.get(d.SESSION_ID, doc.get(d.ID))
    blocks = BlobStore(database, collection_name).read_blocks(ids, session_id=sid if isinstance(sid, str) else None)
    return resolve_session_document(doc, blocks)


async def aread_blocks(
    database: Any, collection_name: str, ids: list[ObjectId], *, session_id: str | None = None
) -> dict[ObjectId, Any]:
    """``BlobStore.read_blocks`` on an ``AsyncMongoClient`` database (the Session Viewer)."""
    if not ids:
        return {}
    chunks = database[f"{blobs_bucket_name(collection_name)}.chunks"]
    parts = _chunk_parts(await chunks.find(*_chunks_query(ids)).sort(_CHUNK_ORDER).to_list())
    missing = set(ids) - parts.keys()
    if missing:
        referenced = None
        if session_id is not None:
            (doc_filter, doc_projection), (bucket_filter, bucket_projection) = _reference_reads(session_id)
            sessions, buckets = _reference_collections(database, collection_name)
            doc = await sessions.find_one(doc_filter, doc_projection)
            raws = [doc.raw] if doc is not None else []
            raws += [bucket.raw for bucket in await buckets.find(bucket_filter, bucket_projection).to_list()]
            referenced = still_referenced(missing, raws)
        raise missing_blocks_error(blobs_bucket_name(collection_name), missing, session_id, referenced)
    return _decode_parts(parts, d.CODEC_OPTIONS)
