"""Canonical episodes, pure: schema, validation, commitments, statistics, standardisation.

Nothing in this package opens a file or a database (the store and the importers
do); import what you need from its modules, e.g. :mod:`dure.client.episodes.schema`.
"""

__all__: list[str] = []
