"""ROS 2 bags (SQLite 3 or MCAP storage) and bare ``.mcap`` / ``.db3`` files, streamed.

Read with ``rosbags``' :class:`~rosbags.rosbag2.Reader` (no ROS install), one message
at a time in time order: only the current episode's raw messages are kept, so a
multi-GB bag never sits in memory.  When an episode closes, each topic's messages are
decoded as a batch, straight from the CDR bytes for the fixed-layout sensor types
(:mod:`dure.client.importers.ros_cdr`), else through ``rosbags``' deserialiser.

Segmentation (``segmentation.method`` in the profile):

* ``per-file``: the whole bag is one episode, from its first to its last message;
* ``marker``: a ``std_msgs/String`` topic whose text starts with ``start`` or ``end``;
  the episode holds every message stamped from the start marker to the end marker,
  inclusive (ties in bag time are handled in either order);
* ``time-gap``: a new episode starts after ``gap_s`` seconds without any message.

Only the profile's topics are checked and decoded: each must carry ROS 2 CDR
messages (an MCAP channel in JSON or protobuf is refused, never decoded as CDR), and
the message definition the bag stores for it is registered (custom types, ``.msg``
or ``.idl``) and must agree with the standard ROS 2 type of the same name.  Error
messages are one line, with bounded names and details.

Task and instruction streams: the latest text published at or before the episode's
end.  Times: the header stamp when ``time.clock`` is ``header`` and the message has one,
else the bag's receive time; episode bounds always use the receive time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dure.client.episodes.profile import SiteProfile
from dure.client.episodes.standardise import RawEpisode, Stream
from dure.client.errors import IngestError
from dure.client.importers.ros_cdr import decode_batch
from dure.policies.errors import DureError

__all__ = ["read_ros"]

_HINT = "Check the topic names in the site profile against 'ros2 bag info' of the source."
_DEFINITION_FORMATS = {1: "msg", 2: "idl"}  # rosbags' MessageDefinitionFormat values
_MAX_DETAIL = 200


def _brief(exc: BaseException) -> str:
    """``Type: first line of the message``, at most a couple of hundred characters."""
    lines = str(exc).strip().splitlines()
    return _cut(f"{type(exc).__name__}: {lines[0] if lines else ''}", _MAX_DETAIL)


def _cut(text: str, size: int = 60) -> str:
    """``text`` as one line of at most ``size`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."


def _listing(names: list[str], limit: int = 8) -> str:
    """At most ``limit`` names (each cut at 60 characters) and how many more there are."""
    shown = [_cut(n) for n in names[:limit]]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{shown}{more}"


@dataclass
class _Pending:
    """The raw messages of the episode being accumulated."""

    start_ns: int
    end_ns: int
    messages: dict[str, list[bytes]] = field(default_factory=dict)
    times: dict[str, list[int]] = field(default_factory=dict)

    def add(self, topic: str, t_ns: int, raw: bytes) -> None:
        self.messages.setdefault(topic, []).append(raw)
        self.times.setdefault(topic, []).append(t_ns)
        self.end_ns = max(self.end_ns, t_ns)


@dataclass
class _Plan:
    """Which topics the profile needs, and what each is for."""

    msgtypes: dict[str, str]
    data_topics: set[str]
    text_topics: set[str]
    marker: str | None

    @classmethod
    def build(cls, profile: SiteProfile, available: dict[str, str], where: str) -> _Plan:
        data = {s.stream for sources in profile.features.values() for s in sources if s.stream}
        for signal in (profile.outcome.success, profile.outcome.reward, profile.intervention):
            if signal is not None and signal.stream:
                data.add(signal.stream)
        text = {t.stream for t in (profile.task, profile.instruction) if t is not None and t.stream}
        seg = profile.segmentation
        marker = seg.stream if seg.method == "marker" else None
        needed = data | text | ({marker} if marker else set())
        missing = sorted(needed - set(available))
        if missing:
            raise IngestError(
                f"{where}: topics {_listing(missing)} named in the profile are not in the bag "
                f"(it has {_listing(sorted(available))})",
                hint=_HINT,
            )
        return cls(
            msgtypes={t: available[t] for t in needed},
            data_topics=data,
            text_topics=text,
            marker=marker,
        )


class _Decoder:
    """Turns a topic's raw messages into times and field arrays."""

    def __init__(self, typestore: Any, clock: str) -> None:
        self.typestore = typestore
        self.clock = clock

    def text(self, raw: bytes, msgtype: str, attr: str) -> str:
        return str(_resolve(self.typestore.deserialize_cdr(raw, msgtype), attr))

    def batch(
        self, msgtype: str, raws: list[bytes], recv: list[int], paths: set[str]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], tuple[str, ...] | None]:
        fast = decode_batch(msgtype, raws)
        recv_ns = np.asarray(recv, dtype=np.int64)
        if fast is not None and paths <= set(fast.fields):
            use_header = self.clock == "header" and fast.stamps_ns is not None
            times = fast.stamps_ns if use_header and fast.stamps_ns is not None else recv_ns
            return times, fast.fields, fast.element_names
        return self._slow(msgtype, raws, recv_ns, paths)

    def _slow(
        self, msgtype: str, raws: list[bytes], recv_ns: np.ndarray, paths: set[str]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], tuple[str, ...] | None]:
        msgs = [self.typestore.deserialize_cdr(raw, msgtype) for raw in raws]
        names = _names(msgs)
        fields = {
            path: np.stack([_numbers(_resolve(m, path)) for m in msgs]) for path in sorted(paths)
        }
        times = recv_ns
        if self.clock == "header" and hasattr(msgs[0], "header"):
            times = np.array(
                [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in msgs],
                dtype=np.int64,
            )
        return times, fields, names


def _resolve(msg: Any, path: str) -> Any:
    value = msg
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _numbers(value: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()


def _names(msgs: list[Any]) -> tuple[str, ...] | None:
    if not isinstance(getattr(msgs[0], "name", None), list):
        return None
    first = tuple(msgs[0].name)
    if any(tuple(m.name) != first for m in msgs):
        raise ValueError("the element names change within the episode")
    return first


class _Segmenter:
    """Cuts the time-ordered message stream into pending episodes."""

    def __init__(self, profile: SiteProfile, plan: _Plan) -> None:
        self.seg = profile.segmentation
        self.plan = plan
        self.gap_ns = int(self.seg.gap_s * 1e9)
        self.current: _Pending | None = None
        self.closing_at: int | None = None
        self.recent: list[tuple[str, int, bytes]] = []  # messages at the latest bag time

    def feed(self, topic: str, t_ns: int, raw: bytes, marker: str | None) -> _Pending | None:
        """Take one message; return an episode that it closed, if any."""
        closed = None
        if self.current is not None and self.closing_at is not None and t_ns > self.closing_at:
            closed, self.current, self.closing_at = self.current, None, None
        if self.seg.method == "marker":
            self._marker(topic, t_ns, raw, marker)
        elif self.seg.method == "time-gap":
            if self.current is not None and t_ns - self.current.end_ns > self.gap_ns:
                closed, self.current = self.current, None
            self._add(topic, t_ns, raw)
        else:
            self._add(topic, t_ns, raw)
        return closed

    def _add(self, topic: str, t_ns: int, raw: bytes) -> None:
        if self.current is None:
            self.current = _Pending(start_ns=t_ns, end_ns=t_ns)
        if topic in self.plan.data_topics:
            self.current.add(topic, t_ns, raw)

    def _marker(self, topic: str, t_ns: int, raw: bytes, marker: str | None) -> None:
        if self.recent and self.recent[0][1] != t_ns:
            self.recent.clear()
        if marker is not None and marker.startswith(self.seg.start):
            self.current, self.closing_at = _Pending(start_ns=t_ns, end_ns=t_ns), None
            for item in self.recent:
                if item[0] in self.plan.data_topics:
                    self.current.add(*item)
        elif marker is not None and marker.startswith(self.seg.end) and self.current is not None:
            self.closing_at = t_ns
            self.current.end_ns = t_ns
        elif self.current is not None and topic in self.plan.data_topics:
            self.current.add(topic, t_ns, raw)
        elif topic in self.plan.data_topics:
            self.recent.append((topic, t_ns, raw))

    def finish(self, where: str) -> _Pending | None:
        """Return the last episode at the end of the bag."""
        if self.seg.method == "marker" and self.current is not None and self.closing_at is None:
            raise IngestError(
                f"{where}: an episode starting at t={self.current.start_ns} ns has a start "
                "marker but no end marker (the recording may have been cut)",
                hint="Trim the bag to whole episodes, or segment by time-gap in the profile.",
            )
        return self.current


def read_ros(path: Path, profile: SiteProfile, digest: str) -> Iterator[RawEpisode]:
    """Yield the episodes of the ROS 2 bag (folder) or bare ``.mcap``/``.db3`` at ``path``.

    Raises
    ------
    IngestError
        If the bag cannot be opened or read, a profile topic is missing, or a message
        cannot be decoded; naming the file, the episode, the topic and the fix.
    """
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    where = str(path)
    try:
        with Reader(path) as reader:
            typestore = get_typestore(Stores.ROS2_HUMBLE)
            available = {c.topic: c.msgtype for c in reader.connections}
            plan = _Plan.build(profile, available, where)
            connections = [c for c in reader.connections if c.topic in plan.msgtypes]
            for conn in connections:
                _check_connection(typestore, conn, where)
            job = _Job(profile, plan, _Decoder(typestore, profile.time.clock), where, digest)
            yield from _episodes(reader.messages(connections=connections), job)
    except DureError:
        raise
    except Exception as exc:
        raise IngestError(
            f"{where}: cannot read the bag ({_brief(exc)})",
            hint="Check that SOURCE is a complete ROS 2 bag folder or .mcap/.db3 file.",
        ) from exc


def _check_connection(typestore: Any, conn: Any, where: str) -> None:
    """Refuse a topic that is not ROS 2 CDR; register the bag's own type definitions.

    A definition the bag carries is parsed and registered, so custom types decode; one
    that contradicts the type of the same name Dure knows (ROS 2 Humble's) is refused
    rather than decoded with the wrong layout.
    """
    from rosbags.typesys import TypesysError, get_types_from_idl, get_types_from_msg

    encoding = str(getattr(conn.ext, "serialization_format", "cdr"))
    label = f"{where}: topic {_cut(conn.topic)} ({_cut(conn.msgtype)})"
    if encoding != "cdr":
        raise IngestError(
            f"{label}: messages are encoded as {_cut(encoding)!r}, not ROS 2 CDR",
            hint="Dure reads ROS 2 CDR messages; convert the recording or map another topic.",
        )
    definition = conn.msgdef.data if conn.msgdef is not None else ""
    kind = _DEFINITION_FORMATS.get(getattr(conn.msgdef.format, "value", 0)) if definition else None
    if kind is None:
        if conn.msgtype not in typestore.types:
            raise IngestError(
                f"{label}: the bag carries no definition of this type and Dure does not know it",
                hint="Record with message definitions stored (MCAP, or rosbag2 from ROS 2 Iron).",
            )
        return
    try:
        types = (
            get_types_from_msg(definition, conn.msgtype)
            if kind == "msg"
            else get_types_from_idl(definition)
        )
        typestore.register(types)
    except TypesysError as exc:
        raise IngestError(
            f"{label}: its message definition in the bag cannot be used ({_brief(exc)})",
            hint="The bag's definition must parse and agree with the standard ROS 2 type of "
            "the same name; rename a custom type that reuses a standard name.",
        ) from exc


@dataclass
class _Job:
    """What every episode of one bag shares while it is read."""

    profile: SiteProfile
    plan: _Plan
    decoder: _Decoder
    where: str
    digest: str
    texts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def _episodes(messages: Iterator[tuple[Any, int, bytes]], job: _Job) -> Iterator[RawEpisode]:
    profile, plan, decoder, where = job.profile, job.plan, job.decoder, job.where
    segmenter = _Segmenter(profile, plan)
    texts = job.texts = {topic: [] for topic in plan.text_topics}
    index = 0
    for conn, t_ns, raw in messages:
        topic = conn.topic
        marker = None
        if topic in texts:
            texts[topic].append(
                (t_ns, decoder.text(raw, conn.msgtype, _text_field(profile, topic)))
            )
        if topic == plan.marker:
            marker = decoder.text(raw, conn.msgtype, profile.segmentation.field)
        closed = segmenter.feed(topic, t_ns, raw, marker)
        if closed is not None:
            yield _raw_episode(closed, index, job)
            index += 1
    last = segmenter.finish(where)
    if last is not None:
        yield _raw_episode(last, index, job)


def _text_field(profile: SiteProfile, topic: str) -> str:
    for source in (profile.task, profile.instruction):
        if source is not None and source.stream == topic:
            return source.field
    return "data"


def _latest(entries: list[tuple[int, str]], until_ns: int) -> str | None:
    chosen = [text for t, text in entries if t <= until_ns]
    if chosen:
        del entries[: max(0, len(chosen) - 1)]
    return chosen[-1] if chosen else None


def _raw_episode(pending: _Pending, index: int, job: _Job) -> RawEpisode:
    profile, plan, decoder, texts, where = job.profile, job.plan, job.decoder, job.texts, job.where
    label = f"{where}, episode {index}"
    streams = _decode_topics(pending, profile, plan, decoder, label)
    task = _text(profile.task, texts, pending.end_ns, label, "task")
    instruction = (
        task
        if profile.instruction is None
        else _text(profile.instruction, texts, pending.end_ns, label, "instruction")
    )
    return RawEpisode(
        source_uri=where,
        source_sha256=job.digest,
        index=index,
        start_ns=pending.start_ns,
        end_ns=pending.end_ns,
        features={
            name: [_stream(streams, s.stream or "", s.fields, label) for s in sources]
            for name, sources in profile.features.items()
        },
        task=task,
        instruction=instruction,
        success=_signal(streams, profile.outcome.success, label),
        reward=_signal(streams, profile.outcome.reward, label),
        intervention=_signal(streams, profile.intervention, label),
    )


_Decoded = dict[str, tuple[np.ndarray, dict[str, np.ndarray], tuple[str, ...] | None]]


def _decode_topics(
    pending: _Pending, profile: SiteProfile, plan: _Plan, decoder: _Decoder, label: str
) -> _Decoded:
    paths: dict[str, set[str]] = {}
    for sources in profile.features.values():
        for s in sources:
            paths.setdefault(s.stream or "", set()).update(s.fields)
    for signal in (profile.outcome.success, profile.outcome.reward, profile.intervention):
        if signal is not None and signal.stream:
            paths.setdefault(signal.stream, set()).add(signal.field)
    decoded: _Decoded = {}
    for topic, raws in pending.messages.items():
        try:
            decoded[topic] = decoder.batch(
                plan.msgtypes[topic], raws, pending.times[topic], paths.get(topic, set())
            )
        except (AttributeError, ValueError, TypeError) as exc:
            raise IngestError(
                f"{label}: topic {topic} ({plan.msgtypes[topic]}): cannot decode the fields "
                f"{_listing(sorted(paths.get(topic, set())))}: {_brief(exc)}",
                hint="Use message attribute paths that exist (e.g. position, wrench.force.x).",
            ) from exc
    return decoded


def _stream(decoded: _Decoded, topic: str, fields: tuple[str, ...], label: str) -> Stream:
    if topic not in decoded:
        raise IngestError(f"{label}: topic {topic} has no messages in this episode", hint=_HINT)
    times, arrays, names = decoded[topic]
    values = np.concatenate([arrays[f].reshape(len(times), -1) for f in fields], axis=1)
    return Stream(name=topic, t_ns=times, values=values, element_names=names)


def _signal(decoded: _Decoded, signal: Any, label: str) -> Stream | None:
    if signal is None or not signal.stream:
        return None
    return _stream(decoded, signal.stream, (signal.field,), label)


def _text(
    source: Any, texts: dict[str, list[tuple[int, str]]], end_ns: int, label: str, what: str
) -> str:
    if source.fixed is not None:
        return str(source.fixed)
    if source.stream is None:
        raise IngestError(
            f"{label}: {what}: ROS bags carry no metadata; use 'fixed' or 'stream'",
            hint=f"Set {what}.stream to the topic that publishes it, or {what}.fixed.",
        )
    value = _latest(texts.get(source.stream, []), end_ns)
    if value is None:
        raise IngestError(
            f"{label}: {what}: nothing was published on {source.stream} before the episode ended",
            hint=f"Publish the {what} before each episode, or set {what}.fixed in the profile.",
        )
    return value
