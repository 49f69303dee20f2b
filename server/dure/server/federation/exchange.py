"""Sending instructions and collecting replies through a Flower ``Grid``.

:func:`exchange` pushes messages with ``Grid.push_messages`` and pulls the
replies with ``Grid.pull_messages`` every ``poll`` seconds until every reply is
in or ``timeout`` has passed.  ``Grid.send_and_receive`` (what Flower's
strategies use) sleeps a fixed 3 s between pulls; a short poll keeps a round's
waiting close to the slowest factory's work.  Replies are keyed by the
destination node of the instruction they answer (looked up by message id, so a
reply cannot speak for another node).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from flwr.app import Message
from flwr.serverapp import Grid

__all__ = ["exchange"]


def exchange(
    grid: Grid,
    messages: Sequence[Message],
    *,
    timeout: float,
    poll: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, Message]:
    """Send ``messages`` and return the replies received in time, by destination node id.

    A node missing from the result did not answer within ``timeout`` seconds (or
    its message could not be pushed).
    """
    if not messages:
        return {}
    pushed = {mid for mid in grid.push_messages(messages) if mid}
    pending = {  # both Flower grids set the id on each message they push
        m.metadata.message_id: m.metadata.dst_node_id
        for m in messages
        if m.metadata.message_id in pushed
    }
    replies: dict[int, Message] = {}
    deadline = clock() + timeout
    while pending:
        for reply in grid.pull_messages(list(pending)):
            node = pending.pop(reply.metadata.reply_to_message_id, None)
            if node is not None:
                replies[node] = reply
        if not pending or clock() >= deadline:
            break
        sleep(poll)
    return replies
