"""The factory client's errors, one class per failure domain.

Every class derives from a :mod:`dure.policies.errors` class and carries a code
listed in :data:`dure.policies.errors.CATALOG` (section "client (factory)")::

    DureError
    ├── DocumentError
    │   └── ProfileError        a site profile (YAML) that is malformed or inconsistent
    ├── EpisodeError            an episode that breaks the canonical schema
    ├── IngestError             a source log that cannot be read or standardised
    └── StoreError              the on-site store or its catalog cannot do what was asked
        ├── EpisodeNotFoundError  an episode id the catalog does not hold
        └── StoreFullError        the disk holding the factory home is full

Messages name the file, the episode, the field and the value; hints say how to fix.
"""

from __future__ import annotations

from dure.policies.errors import DocumentError, DureError

__all__ = [
    "EpisodeError",
    "EpisodeNotFoundError",
    "IngestError",
    "ProfileError",
    "StoreError",
    "StoreFullError",
]


class EpisodeError(DureError):
    """An episode that breaks the canonical schema (shape, dtype, units, outcome...)."""

    code = "client.episode"
    default_hint = (
        "Fix the named field in the standardisation step; "
        "dure.client.episodes.schema documents every rule."
    )


class ProfileError(DocumentError):
    """A site profile (YAML) that is malformed, incomplete or inconsistent."""

    code = "client.profile"
    default_hint = "Fix the named key in the site profile; docs/site-profile.md lists every key."


class IngestError(DureError):
    """A source log (bag, folder, HDF5, CSV) that cannot be read or standardised."""

    code = "client.ingest"
    default_hint = "Check that the source matches its site profile (topics, columns, units, rates)."


class StoreError(DureError):
    """The on-site episode store or its catalog cannot do what was asked."""

    code = "client.store"
    default_hint = (
        "Check the factory home (--home or DURE_FACTORY_HOME): it must be writable "
        "and hold a store written by Dure."
    )


class EpisodeNotFoundError(StoreError):
    """An episode id that the catalog does not hold."""

    code = "client.store_not_found"
    default_hint = "List the episodes with 'dure factory episodes list' and copy an id from it."


class StoreFullError(StoreError):
    """The disk holding the factory home filled up during a write (nothing was stored)."""

    code = "client.store_full"
    default_hint = (
        "Free space on the disk holding the factory home, or move the home to a larger "
        "disk (--home or DURE_FACTORY_HOME), then run the ingest again."
    )
