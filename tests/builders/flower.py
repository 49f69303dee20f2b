"""An in-process Flower ``Grid`` that delivers real Messages to real ClientApps.

Every message goes through Flower's own wire encoding (its inflatable objects,
deflated then inflated), once on the way to the node and once on the way back,
so each ClientApp gets its own copy and the ServerApp never sees a reply object
the ClientApp still holds.  ``TaskIdentity`` is set as Flower's runtime does.
Nodes can be made to crash (no reply), and replies can be tampered with in
transit, for the failure tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.proto.node_pb2 import NodeInfo
from flwr.serverapp import Grid
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

__all__ = ["LocalGrid", "LocalNode", "set_task_identity", "wire_copy"]

Tamper = Callable[[Message], Message]


def set_task_identity(run_id: int = 7, node_id: int = 0) -> None:
    """Set Flower's process-wide task identity (the runtime does this for a real task)."""
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = run_id
    TaskIdentity.node_id = node_id


def wire_copy(message: Message) -> Message:
    """Return ``message`` as the other side receives it (Flower's object encoding)."""
    message_id = message.metadata.message_id
    contents = {oid: obj.deflate() for oid, obj in get_all_nested_objects(message).items()}
    copy = cast(Message, inflate_object_from_contents(message.object_id, contents))
    copy.metadata.__dict__["_message_id"] = message_id
    return copy


@dataclass
class LocalNode:
    """A virtual SuperNode: its ClientApp, its context, and test switches."""

    node_id: int
    app: ClientApp
    node_config: dict[str, str | int | float | bool]
    public_key: bytes = b""
    crashed: bool = False
    tamper: Tamper | None = None
    received: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def context(self, run_id: int) -> Context:
        """The node's context for ``run_id``."""
        return Context(
            run_id=run_id,
            node_id=self.node_id,
            node_config=dict(self.node_config),
            state=RecordDict(),
            run_config={},
        )


class LocalGrid(Grid):
    """A ``Grid`` whose nodes run in this process (see the module docstring)."""

    def __init__(self, nodes: Iterable[LocalNode], run_id: int = 7) -> None:
        self.nodes = {node.node_id: node for node in nodes}
        self._run = Run.create_empty(run_id)
        self._replies: dict[str, Message] = {}
        set_task_identity(run_id)

    def set_run(self, run: Run) -> None:
        """Set the run."""
        self._run = run

    @property
    def run(self) -> Run:
        """The run."""
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Create a message (deprecated in Flower, kept for the abstract interface)."""
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        """The connected nodes' ids."""
        return list(self.nodes)

    def get_nodes(self) -> Iterable[NodeInfo]:
        """The connected nodes, with their registered public keys."""
        return [NodeInfo(node_id=n.node_id, public_key=n.public_key) for n in self.nodes.values()]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Deliver each message to its node now; keep the reply for ``pull_messages``."""
        ids = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            ids.append(message.metadata.message_id)
            reply = self._deliver(message)
            if reply is not None:
                self._replies[message.metadata.message_id] = reply
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Return (once) the replies to ``message_ids`` that exist."""
        return [self._replies.pop(mid) for mid in list(message_ids) if mid in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push then pull."""
        return self.pull_messages(list(self.push_messages(messages)))

    def _deliver(self, message: Message) -> Message | None:
        node = self.nodes.get(message.metadata.dst_node_id)
        if node is None or node.crashed:
            return None
        node.received.append(message.metadata.message_type)
        TaskIdentity.node_id = node.node_id
        delivered = wire_copy(message)
        try:
            reply = node.app(delivered, node.context(self._run.run_id))
        except Exception as exc:  # Flower answers a ClientApp exception with error code 2
            node.errors.append(repr(exc))
            reply = Message(Error(code=2, reason=repr(exc)), reply_to=delivered)
        finally:
            TaskIdentity.node_id = 0
        reply = wire_copy(reply)
        return node.tamper(reply) if node.tamper is not None else reply
