"""Reading and writing site profiles (YAML) with errors that name the key and the fix.

:func:`parse_profile` turns YAML text into a validated
:class:`~dure.client.episodes.profile.SiteProfile`; :func:`load_profile` reads a
file; :func:`dump_profile` writes the text back (``parse_profile(dump_profile(p)) ==
p``).  Every failure is a :class:`~dure.client.errors.ProfileError` whose message
names the file, the key path (``features.action[0].unit``) and the problem, and
whose hint says how to fix it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dure.client.episodes.profile import SiteProfile
from dure.client.errors import ProfileError

__all__ = ["dump_profile", "load_profile", "parse_profile"]

_HINTS = {
    "extra_forbidden": "Remove the key or fix its spelling; docs/site-profile.md lists every key.",
    "missing": "Add the key; docs/site-profile.md shows an example profile.",
    "literal_error": "Use one of the values the message lists.",
    "enum": "Use one of the values the message lists.",
}


def load_profile(path: Path) -> SiteProfile:
    """Read and validate the site profile at ``path``.

    Raises
    ------
    ProfileError
        If the file cannot be read, is not YAML, or does not validate.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(
            f"{path}: cannot read the site profile ({exc})",
            hint="Pass the path of a readable UTF-8 YAML file to --profile.",
        ) from exc
    return parse_profile(text, origin=str(path))


def parse_profile(text: str, *, origin: str = "<profile>") -> SiteProfile:
    """Parse YAML ``text`` into a validated :class:`SiteProfile`.

    Raises
    ------
    ProfileError
        Naming ``origin``, the key path and the fix.
    """
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ProfileError(
            f"{origin}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}",
            hint="Fix the YAML syntax (indentation, quotes, colons) at the position shown.",
        ) from exc
    except (ValueError, RecursionError) as exc:  # e.g. yaml's own int/float limits
        raise ProfileError(f"{origin}: not valid YAML: {exc}", hint="Fix the YAML syntax.") from exc
    if not isinstance(data, dict):
        raise ProfileError(
            f"{origin}: a site profile is a YAML mapping, got {type(data).__name__}",
            hint="Start from the example in docs/site-profile.md (keys format, fps, features...).",
        )
    return _validate(data, origin)


def _validate(data: dict[Any, Any], origin: str) -> SiteProfile:
    try:
        return SiteProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = _key_path(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        hint = _HINTS.get(first["type"], "Fix the named key; docs/site-profile.md lists every key.")
        where = f"{origin}: {path}" if path else origin
        raise ProfileError(f"{where}: {message}", hint=hint) from exc
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"{origin}: {exc}", hint="Fix the profile's values.") from exc


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif _TYPE_TAG.search(item) or item in _TYPE_NAMES:
            continue  # pydantic's union-member tags, not keys
        else:
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts)


_TYPE_TAG = re.compile(r"[\[\(]")
_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "none", "list", "dict", "tuple"})


def dump_profile(profile: SiteProfile) -> str:
    """Return the YAML text of ``profile`` (the inverse of :func:`parse_profile`)."""
    data = profile.model_dump(mode="json", exclude_defaults=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
