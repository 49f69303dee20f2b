"""The catalog: an SQL index of the stored episodes (SQLModel, SQLite on site).

Tables (storage models only; callers get :class:`EpisodeSummary`)::

    episodes      one row per episode: identity, commitment, context facts,
                  outcome, size, and where its rows are in the dataset files
    episode_tags  (episode_id, tag), one row per tag
    commits       one row per committed ingest; its presence is the commit point
                  of an ingest (see dure.client.store.transaction)

Contract
--------
* :meth:`Catalog.record_commit` inserts a whole ingest (every episode, its tags
  and the commit row) in ONE transaction: after a failure nothing of it is
  visible.
* A metadata update (re-ingest with changed tags or context, see
  :mod:`dure.client.store.metadata`) replaces an episode's facts and tags in the
  same transaction as its ingest's commit row.
* :meth:`Catalog.select` applies :class:`~dure.client.episodes.query.EpisodeQuery`
  and returns summaries ordered by ``episode_index`` (ingest order).
* :meth:`Catalog.selection_root` is the Merkle root (RFC 9162, through
  :func:`dure.policies.merkle.root_hash`) over the 32-byte commitments of the
  given episodes, in ascending ``episode_id`` order (code-point order, duplicates
  removed): the same set of episodes always gives the same root, whatever order
  it was selected in.

The engine is built by :meth:`Catalog.from_url`, never at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, RowMapping, Table, delete, event, insert, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, create_engine, func, select
from sqlmodel.sql.expression import SelectOfScalar

from dure.client.episodes.query import EpisodeQuery, EpisodeSummary
from dure.client.errors import EpisodeNotFoundError, StoreError
from dure.client.store.codec import EpisodeLocation
from dure.policies.encoding import Digest, digest_from_hex
from dure.policies.merkle import root_hash

__all__ = ["Catalog", "CatalogEntry", "CommitRecord", "EpisodeRecord", "EpisodeTagRecord"]


class EpisodeRecord(SQLModel, table=True):
    """One stored episode (storage model)."""

    __tablename__ = "episodes"

    episode_id: str = Field(primary_key=True)
    episode_index: int = Field(unique=True, index=True)
    commitment: str = Field(unique=True, index=True)
    site: str = Field(index=True)
    cell: str = Field(index=True)
    robot: str = Field(index=True)
    embodiment: str
    task: str = Field(index=True)
    source: str = Field(index=True)
    operator: str
    skill_tier: str | None = None
    start_time: datetime = Field(index=True)  # aware; SQLModel stores UTC
    success: bool = Field(index=True)
    success_definition: str
    failure_mode: str | None = None
    n_frames: int
    fps: int
    sensors_digest: str
    task_index: int
    from_index: int
    data_chunk: int
    data_file: int
    meta_chunk: int
    meta_file: int
    commit_id: str = Field(index=True)


class EpisodeTagRecord(SQLModel, table=True):
    """One tag of one episode (storage model)."""

    __tablename__ = "episode_tags"

    episode_id: str = Field(primary_key=True, foreign_key="episodes.episode_id")
    tag: str = Field(primary_key=True, index=True)


class CommitRecord(SQLModel, table=True):
    """One committed ingest (storage model)."""

    __tablename__ = "commits"

    commit_id: str = Field(primary_key=True)
    committed_at: datetime
    n_episodes: int
    n_frames: int


_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit

CatalogEntry = tuple[EpisodeSummary, EpisodeLocation]
"""What an ingest adds to the catalog per episode."""

_TABLES: list[Table] = [
    EpisodeRecord.__table__,  # type: ignore[attr-defined]
    EpisodeTagRecord.__table__,  # type: ignore[attr-defined]
    CommitRecord.__table__,  # type: ignore[attr-defined]
]


class Catalog:
    """The episode index over one SQL engine (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        try:
            SQLModel.metadata.create_all(engine, tables=_TABLES)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the catalog at {engine.url!r}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str) -> Catalog:
        """Open (creating if needed) the catalog at ``url`` (``sqlite:///path``...)."""
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return cls(engine)

    def close(self) -> None:
        """Release the engine's connections."""
        self._engine.dispose()

    def record_commit(
        self,
        commit_id: str,
        entries: Sequence[CatalogEntry],
        updates: Sequence[EpisodeSummary] = (),
    ) -> None:
        """Insert one ingest's episodes, tags and commit row in a single transaction.

        ``updates`` are new summaries of stored episodes (a re-ingest with changed
        metadata): their rows and tags are replaced in the same transaction.
        """
        commit = CommitRecord(
            commit_id=commit_id,
            committed_at=datetime.now(UTC),
            n_episodes=len(entries),
            n_frames=sum(summary.n_frames for summary, _ in entries),
        )
        episodes = [_record_values(summary, where, commit_id) for summary, where in entries]
        tags = [
            {"episode_id": summary.episode_id, "tag": tag}
            for summary, _ in entries
            for tag in summary.tags
        ]
        try:
            with Session(self._engine) as session, session.begin():
                session.add(commit)
                if episodes:
                    session.execute(insert(EpisodeRecord), episodes)
                if tags:
                    session.execute(insert(EpisodeTagRecord), tags)
                for summary in updates:
                    _replace_metadata(session, summary)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"the catalog refused ingest {commit_id}: {exc.__class__.__name__}: {exc}",
                hint="Nothing was stored. Check the catalog database and retry the ingest.",
            ) from exc

    def has_commit(self, commit_id: str) -> bool:
        """Whether the ingest ``commit_id`` was committed."""
        with Session(self._engine) as session:
            return session.get(CommitRecord, commit_id) is not None

    def count(self) -> int:
        """Number of episodes in the catalog."""
        with Session(self._engine) as session:
            return int(session.exec(select(func.count()).select_from(EpisodeRecord)).one())

    def by_commitment(self, commitment: str) -> tuple[EpisodeSummary, EpisodeLocation] | None:
        """Return the summary and location of the stored episode with ``commitment``, if any."""
        with Session(self._engine) as session:
            episode_id = session.exec(
                select(EpisodeRecord.episode_id).where(EpisodeRecord.commitment == commitment)
            ).first()
        return None if episode_id is None else self.get(episode_id)

    @contextlib.contextmanager
    def commitment_probe(self) -> Iterator[Callable[[str], bool]]:
        """Yield a fast ``is_stored(commitment_hex)`` check over one open connection."""
        statement = text("SELECT 1 FROM episodes WHERE commitment = :commitment LIMIT 1")
        with self._engine.connect() as connection:
            yield (
                lambda commitment: (
                    connection.execute(statement, {"commitment": commitment}).first() is not None
                )
            )

    def select(self, query: EpisodeQuery | None = None) -> list[EpisodeSummary]:
        """Return the summaries of the episodes ``query`` selects, in ingest order."""
        return [summary for summary, _ in self._located(query or EpisodeQuery())]

    def get(self, episode_id: str) -> tuple[EpisodeSummary, EpisodeLocation]:
        """Return the summary and location of one episode."""
        return self.locations([episode_id])[0]

    def locations(self, episode_ids: Sequence[str]) -> list[tuple[EpisodeSummary, EpisodeLocation]]:
        """Return summary and location of each episode, in the order given."""
        found: dict[str, tuple[EpisodeSummary, EpisodeLocation]] = {}
        unique = list(dict.fromkeys(episode_ids))
        for start in range(0, len(unique), _IN_CHUNK):
            query = EpisodeQuery(episode_ids=tuple(unique[start : start + _IN_CHUNK]))
            found.update((item[0].episode_id, item) for item in self._located(query))
        missing = [episode_id for episode_id in unique if episode_id not in found]
        if missing:
            raise EpisodeNotFoundError(
                f"no episode {missing[0]!r} in the catalog"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return [found[episode_id] for episode_id in episode_ids]

    def _located(self, query: EpisodeQuery) -> list[tuple[EpisodeSummary, EpisodeLocation]]:
        chosen = _apply(select(EpisodeRecord.episode_id), query).scalar_subquery()
        episodes, tags_table = _TABLES[0], _TABLES[1]
        statement = (
            sa_select(episodes)
            .where(episodes.c.episode_id.in_(chosen))
            .order_by(episodes.c.episode_index)
        )
        tag_statement = sa_select(tags_table.c.episode_id, tags_table.c.tag).where(
            tags_table.c.episode_id.in_(chosen)
        )
        with Session(self._engine) as session:
            rows = session.execute(statement).mappings().all()
            tags: dict[str, list[str]] = {}
            for episode_id, tag in session.execute(tag_statement):
                tags.setdefault(episode_id, []).append(tag)
        return [(_summary(row, tags.get(row["episode_id"], [])), _location(row)) for row in rows]

    def selection_root(self, episode_ids: Iterable[str]) -> Digest:
        """Merkle root over the commitments of ``episode_ids`` sorted by id (module docstring)."""
        ids = sorted(set(episode_ids))
        rows: list[tuple[str, str]] = []
        with Session(self._engine) as session:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                rows += session.exec(
                    select(EpisodeRecord.episode_id, EpisodeRecord.commitment).where(
                        col(EpisodeRecord.episode_id).in_(chunk)
                    )
                ).all()
        by_id = dict(rows)
        missing = [episode_id for episode_id in ids if episode_id not in by_id]
        if missing:
            raise EpisodeNotFoundError(f"no episodes {missing[:5]} in the catalog")
        return root_hash([digest_from_hex(by_id[episode_id]) for episode_id in ids])


_FIXED_COLUMNS = {"episode_id", "episode_index", "commitment", "tags", "start_time"}


def _replace_metadata(session: Session, summary: EpisodeSummary) -> None:
    """Replace the facts and tags of the stored episode ``summary.episode_id``."""
    facts = summary.model_dump(exclude=_FIXED_COLUMNS, mode="json")
    episode_id = summary.episode_id
    session.execute(
        update(EpisodeRecord)
        .where(col(EpisodeRecord.episode_id) == episode_id)
        .values(**facts, start_time=summary.start_time)
    )
    session.execute(delete(EpisodeTagRecord).where(col(EpisodeTagRecord.episode_id) == episode_id))
    if summary.tags:
        session.execute(
            insert(EpisodeTagRecord), [{"episode_id": episode_id, "tag": t} for t in summary.tags]
        )


def _sqlite_pragmas(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _apply(statement: SelectOfScalar[str], query: EpisodeQuery) -> SelectOfScalar[str]:
    for column, values in (
        (EpisodeRecord.task, query.tasks),
        (EpisodeRecord.cell, query.cells),
        (EpisodeRecord.robot, query.robots),
        (EpisodeRecord.site, query.sites),
        (EpisodeRecord.source, tuple(s.value for s in query.sources)),
    ):
        if values:
            statement = statement.where(col(column).in_(values))
    if query.episode_ids is not None:
        statement = statement.where(col(EpisodeRecord.episode_id).in_(query.episode_ids))
    if query.since is not None:
        statement = statement.where(col(EpisodeRecord.start_time) >= query.since)
    if query.until is not None:
        statement = statement.where(col(EpisodeRecord.start_time) < query.until)
    if query.success is not None:
        statement = statement.where(col(EpisodeRecord.success) == query.success)
    for tag in query.tags:
        tagged = select(EpisodeTagRecord.episode_id).where(EpisodeTagRecord.tag == tag)
        statement = statement.where(col(EpisodeRecord.episode_id).in_(tagged))
    return statement


def _record_values(
    summary: EpisodeSummary, where: EpisodeLocation, commit_id: str
) -> dict[str, object]:
    facts = summary.model_dump(exclude={"tags", "start_time", "episode_index"}, mode="json")
    return {
        **facts,
        "start_time": summary.start_time,
        "episode_index": where.episode_index,
        "task_index": where.task_index,
        "from_index": where.from_index,
        "data_chunk": where.data_chunk,
        "data_file": where.data_file,
        "meta_chunk": where.meta_chunk,
        "meta_file": where.meta_file,
        "commit_id": commit_id,
    }


_SUMMARY_FIELDS = tuple(name for name in EpisodeSummary.model_fields if name != "tags")


def _summary(row: RowMapping, tags: list[str]) -> EpisodeSummary:
    values = {name: row[name] for name in _SUMMARY_FIELDS}
    values["tags"] = tuple(sorted(tags))
    return EpisodeSummary.model_validate(values)


def _location(row: RowMapping) -> EpisodeLocation:
    return EpisodeLocation(
        episode_index=row["episode_index"],
        task_index=row["task_index"],
        from_index=row["from_index"],
        data_chunk=row["data_chunk"],
        data_file=row["data_file"],
        meta_chunk=row["meta_chunk"],
        meta_file=row["meta_file"],
    )
