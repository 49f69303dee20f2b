"""Selecting episodes: the query over the catalog and the summary it returns.

Both are plain frozen models, independent of how the catalog stores them, so a
usage policy's episode selector, the command line and the training code all
speak the same terms.

Matching rules of :class:`EpisodeQuery` (all given criteria must hold):

* ``tasks``, ``cells``, ``robots``, ``sites``, ``sources``: the episode's value is
  one of those listed (an empty tuple does not restrict);
* ``tags``: the episode carries *every* listed tag;
* ``since`` (inclusive) and ``until`` (exclusive) bound ``start_time``;
* ``success``: ``True`` keeps successes, ``False`` failures, ``None`` both;
* ``episode_ids``: when given, only those episodes are considered.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, field_validator

from dure.client.episodes.schema import Source, SuccessDefinition
from dure.policies.encoding import HexDigest

__all__ = ["EpisodeQuery", "EpisodeSummary"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class EpisodeQuery(BaseModel):
    """Which episodes to select (see the module docstring for the rules)."""

    model_config = _FROZEN

    tasks: tuple[str, ...] = ()
    cells: tuple[str, ...] = ()
    robots: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    tags: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    success: bool | None = None
    episode_ids: tuple[str, ...] | None = None

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("time bounds must be timezone-aware, e.g. 2025-03-01T00:00:00Z")
        return value.astimezone(UTC)


class EpisodeSummary(BaseModel):
    """What the catalog knows about one stored episode.

    It is a :class:`dure.policies.selector.EpisodeFacts`, so a usage policy's
    episode selector reads it directly.
    """

    model_config = _FROZEN

    episode_id: str
    episode_index: int
    commitment: HexDigest
    site: str
    cell: str
    robot: str
    embodiment: str
    task: str
    source: Source
    operator: str
    skill_tier: str | None
    start_time: datetime
    tags: tuple[str, ...]
    success: bool
    success_definition: SuccessDefinition
    failure_mode: str | None
    n_frames: int
    fps: int
    sensors_digest: HexDigest
