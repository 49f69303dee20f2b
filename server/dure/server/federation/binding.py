"""Which Flower node acts for which site: binding node ids to registered sites.

Flower addresses nodes by id; policies, claims and the ledger speak of sites.
A node is bound to a site in one of two ways, tried in this order:

1. **Registered public key** (deployments with SuperNode authentication): the
   node's ``NodeInfo.public_key`` (the ECDSA key Flower authenticated it with)
   equals the ``supernode_key`` of a registered site identity, which the site
   signed with its Ed25519 key.  Nothing is sent to the node.
2. **Challenge** (the Simulation Engine, or a SuperLink without SuperNode
   authentication, where nodes carry no key): the coordinator sends a
   ``query.identify`` message with a fresh random nonce; the node answers with a
   :class:`~dure.policies.contribution.NodeBinding` naming its site, the node id,
   the run id and the nonce, signed with the site's Ed25519 key.  The message
   carries no job and no model and the factory touches no data to answer it.

Only the sites passed in (the admitted ones) are bound; a node that proves
another identity, or none, is never sampled.  One node per site: the first that
proves it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from dure.policies.contribution import NodeBinding
from dure.policies.dsse import Envelope
from dure.policies.errors import DureError
from dure.policies.signed import open_document
from dure.server.federation.exchange import exchange
from dure.server.federation.registry import RegisteredSite, supernode_key_digest
from dure.server.federation.wire import IDENTIFY, config_message

__all__ = ["NodeDirectory", "bind_nodes", "verify_binding"]


@dataclass
class NodeDirectory:
    """Bound nodes: site URN to node id, and back."""

    by_site: dict[str, int] = field(default_factory=dict)

    def bind(self, site: str, node_id: int) -> None:
        """Bind ``node_id`` to ``site`` unless either is bound already."""
        if site not in self.by_site and node_id not in self.by_site.values():
            self.by_site[site] = node_id

    def node(self, site: str) -> int | None:
        """The node bound to ``site``, if any."""
        return self.by_site.get(site)


def bind_nodes(
    grid: Grid,
    sites: Sequence[RegisteredSite],
    *,
    wait: float,
    reply_timeout: float,
    poll: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> NodeDirectory:
    """Bind the connected nodes to ``sites``, waiting up to ``wait`` s for them to connect."""
    directory = NodeDirectory()
    tried: set[int] = set()
    deadline = clock() + wait
    while True:
        fresh = [node for node in grid.get_nodes() if node.node_id not in tried]
        tried.update(node.node_id for node in fresh)
        _bind_by_key(directory, sites, fresh)
        unbound = [node.node_id for node in fresh if node.node_id not in directory.by_site.values()]
        _challenge(grid, directory, sites, unbound, timeout=reply_timeout, poll=poll)
        if len(directory.by_site) == len(sites) or clock() >= deadline:
            return directory
        sleep(max(poll, 0.2))


def verify_binding(
    envelope_json: bytes, sites: Sequence[RegisteredSite], node_id: int, run_id: int, nonce: str
) -> str | None:
    """Return the URN of the site that signed this binding for ``node_id``, or ``None``."""
    try:
        envelope = Envelope.from_json(envelope_json)
        claimed = NodeBinding.from_canonical_bytes(envelope.payload)
        site = next(s for s in sites if s.urn == claimed.site)
        opened = open_document(
            envelope, "request", NodeBinding, {site.verify_key.key_id: site.verify_key}
        )
    except (DureError, StopIteration):
        return None
    binding = opened.document
    if (binding.node_id, binding.run_id, binding.nonce) != (str(node_id), str(run_id), nonce):
        return None
    return site.urn


def _bind_by_key(
    directory: NodeDirectory, sites: Sequence[RegisteredSite], nodes: Sequence[Any]
) -> None:
    keys = {supernode_key_digest(site.identity.supernode_key): site.urn for site in sites}
    for node in nodes:
        raw = bytes(node.public_key or b"") if hasattr(node, "public_key") else b""
        if not raw:
            continue
        try:
            site = keys.get(supernode_key_digest(raw))
        except DureError:
            continue
        if site is not None:
            directory.bind(site, int(node.node_id))


def _challenge(
    grid: Grid,
    directory: NodeDirectory,
    sites: Sequence[RegisteredSite],
    nodes: list[int],
    *,
    timeout: float,
    poll: float,
) -> None:
    if not nodes or len(directory.by_site) == len(sites):
        return
    run_id = grid.run.run_id
    nonces = {node: os.urandom(32).hex() for node in nodes}
    messages = [
        config_message(node, IDENTIFY, {"nonce": nonces[node], "run-id": str(run_id)})
        for node in nodes
    ]
    for node, reply in exchange(grid, messages, timeout=timeout, poll=poll).items():
        record = None if reply.has_error() else reply.content.get("binding")
        envelope = record.get("envelope") if isinstance(record, ConfigRecord) else None
        if isinstance(envelope, bytes):
            site = verify_binding(envelope, sites, node, run_id, nonces[node])
            if site is not None:
                directory.bind(site, node)
