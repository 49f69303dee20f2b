"""The frames commitment: stable, documented bytes, and sensitive to every value."""

from __future__ import annotations

import hashlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.builders.episodes import make_episode, replace_frames

from dure.client.episodes.commitment import FRAMES_DOMAIN, frames_commitment
from dure.client.episodes.schema import Frames

BASE = make_episode(7, n_frames=20, phases=True, force=True)


def _reference(frames: Frames) -> bytes:
    """The encoding written out by hand from the module docstring."""
    columns: dict[str, tuple[str, np.ndarray]] = {
        "timestamp": ("<f8", frames.timestamp),
        "observation.state": ("<f4", frames.observation["observation.state"]),
        "observation.force": ("<f4", frames.observation["observation.force"]),
        "action": ("<f4", frames.action),
        "dure.intervention": ("|b1", frames.intervention),
        "next.success": ("|b1", frames.next_success),
        "next.reward": ("<f4", frames.next_reward),
        "next.done": ("|b1", frames.next_done),
    }
    if frames.phase is not None:
        columns["dure.phase"] = ("<i2", frames.phase)
    out = b"dure/episode-frames/v1\n"
    for name in sorted(columns):
        typestr, array = columns[name]
        shape = "x".join(map(str, array.shape))
        out += f"{name} {typestr} {shape}\n".encode() + array.astype(typestr).tobytes()
    return out


def test_matches_the_documented_encoding() -> None:
    assert FRAMES_DOMAIN == b"dure/episode-frames/v1\n"
    assert frames_commitment(BASE.frames) == hashlib.sha256(_reference(BASE.frames)).digest()
    assert BASE.commitment() == frames_commitment(BASE.frames)


def test_stable_across_rebuilds_and_memory_layout() -> None:
    again = make_episode(7, n_frames=20, phases=True, force=True)
    assert again.commitment() == BASE.commitment()
    fortran = np.asfortranarray(BASE.frames.action)
    big_endian = BASE.frames.next_reward.astype(">f4")
    other = replace_frames(BASE, action=fortran, next_reward=big_endian)
    assert other.commitment() == BASE.commitment()


def test_metadata_is_not_committed() -> None:
    changed = make_episode(7, n_frames=20, phases=True, force=True, task="push")
    assert changed.commitment() == BASE.commitment()


def test_dropping_phase_changes_it() -> None:
    assert replace_frames(BASE, phase=None).commitment() != BASE.commitment()


_FIELDS = [
    "timestamp",
    "observation.state",
    "observation.force",
    "action",
    "intervention",
    "next_success",
    "next_reward",
    "next_done",
    "phase",
]


def _mutate(frames: Frames, field: str, index: int) -> Frames:
    if field.startswith("observation."):
        obs = {k: v.copy() for k, v in frames.observation.items()}
        flat = obs[field].reshape(-1)
        flat[index % flat.size] = np.nextafter(flat[index % flat.size], np.float32(np.inf))
        return replace_frames(BASE, observation=obs).frames
    array = getattr(frames, field).copy()
    flat = array.reshape(-1)
    i = index % flat.size
    if array.dtype == np.bool_:
        flat[i] = ~flat[i]
    elif array.dtype.kind == "f":
        flat[i] = np.nextafter(flat[i], np.inf)
    else:
        flat[i] = flat[i] + 1
    return replace_frames(BASE, **{field: array}).frames


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(_FIELDS), index=st.integers(min_value=0, max_value=10_000))
def test_any_single_value_change_changes_it(field: str, index: int) -> None:
    assert frames_commitment(_mutate(BASE.frames, field, index)) != BASE.commitment()


def test_shape_change_with_same_bytes_changes_it() -> None:
    state = BASE.frames.observation["observation.state"]
    reshaped = {**BASE.frames.observation, "observation.state": state.reshape(20 * 3, 13)}
    assert replace_frames(BASE, observation=reshaped).commitment() != BASE.commitment()
