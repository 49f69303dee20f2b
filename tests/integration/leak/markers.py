"""Markers planted in a factory's raw episodes, and the search for them in captured bytes.

:func:`marked_episode` returns a valid episode whose site-only string metadata
(operator pseudonym, cell, tags, language instruction, source URI) carries a
random text marker and whose ``observation.state`` holds six float32 values
whose bytes are a random numeric marker.  :func:`encodings` lists the forms a
leak could take on the wire (raw, hex, base64 at its three alignments, URL-safe
base64, UTF-16) and :func:`find_marker` reports which of them occur.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets

import numpy as np
from tests.builders.episodes import make_episode

from dure.client.episodes.schema import Episode

__all__ = ["Markers", "encodings", "find_marker", "marked_episode", "new_markers"]


@dataclasses.dataclass(frozen=True)
class Markers:
    """A text marker (32 lowercase hex) and a numeric one (24 bytes: six float32)."""

    text: str
    numeric: bytes

    def all(self) -> dict[str, bytes]:
        """Both markers as bytes, by name."""
        return {"text": self.text.encode(), "numeric": self.numeric}


def new_markers() -> Markers:
    """Fresh random markers; each float32 of the numeric one lies in ±[0.5, 2)."""
    raw = bytearray(secrets.token_bytes(24))
    for i in range(3, 24, 4):
        raw[i] = secrets.choice((0x3F, 0xBF))  # sign and exponent: a finite, plain value
    return Markers(secrets.token_hex(16), bytes(raw))


def marked_episode(markers: Markers, seed: int, site: str) -> Episode:
    """A valid episode of ``site`` carrying both markers (module docstring)."""
    text = markers.text
    episode = make_episode(
        seed, site=site, n_frames=20, cell=f"cell-{text}", tags=("sim", f"batch-{text}")
    )
    context = type(episode.context).model_validate(
        episode.context.model_dump()
        | {"operator": text, "instruction": f"pick the part next to bin {text}"}
    )
    provenance = type(episode.provenance).model_validate(
        episode.provenance.model_dump() | {"source_uri": f"file:///logs/{site}/{text}.mcap"}
    )
    state = episode.frames.observation["observation.state"].copy()
    state[3, 5:11] = np.frombuffer(markers.numeric, dtype="<f4")
    frames = dataclasses.replace(
        episode.frames, observation={**episode.frames.observation, "observation.state": state}
    )
    return dataclasses.replace(episode, context=context, provenance=provenance, frames=frames)


def encodings(marker: bytes) -> dict[str, bytes]:
    """The forms of ``marker`` a leak could take (module docstring), by name."""
    forms = {
        "raw": marker,
        "hex": marker.hex().encode(),
        "HEX": marker.hex().upper().encode(),
        "utf-16-le": marker.decode("latin-1").encode("utf-16-le"),
        "utf-16-be": marker.decode("latin-1").encode("utf-16-be"),
    }
    for shift in range(3):
        padded = b"\0" * shift + marker
        start, end = -(-8 * shift // 6), 8 * len(padded) // 6
        forms[f"base64+{shift}"] = base64.b64encode(padded)[start:end]
        forms[f"base64url+{shift}"] = base64.urlsafe_b64encode(padded)[start:end]
    return forms


def find_marker(haystack: bytes, marker: bytes) -> list[str]:
    """The names of the forms of ``marker`` that occur in ``haystack``."""
    return [name for name, form in encodings(marker).items() if form in haystack]
