"""The on-site episode store: a LeRobot v3 dataset and its SQL catalog in a factory home.

Modules: :mod:`~dure.client.store.store` (the :class:`EpisodeStore` facade),
:mod:`~dure.client.store.catalog` (SQLModel tables and selection),
:mod:`~dure.client.store.transaction` (atomic ingests), :mod:`~dure.client.store.writer`,
:mod:`~dure.client.store.reader`, :mod:`~dure.client.store.codec` (Arrow encoding),
:mod:`~dure.client.store.meta`, :mod:`~dure.client.store.layout` and
:mod:`~dure.client.store.export`.
"""

from dure.client.store.catalog import Catalog
from dure.client.store.reader import DatasetReader
from dure.client.store.store import EpisodeStore, IngestReceipt

__all__ = ["Catalog", "DatasetReader", "EpisodeStore", "IngestReceipt"]
