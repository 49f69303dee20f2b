"""Sending instructions and collecting replies through a Flower ``Grid``.

:func:`exchange` pushes messages with ``Grid.push_messages`` and pulls the
replies with ``Grid.pull_messages`` every ``poll`` seconds until every reply is
in or ``timeout`` has passed.  ``Grid.send_and_receive`` (what Flower's
strategies use) sleeps a fixed 3 s between pulls; a short poll keeps a round's
waiting close to the slowest factory's work.  Replies are keyed by the
destination node of the instruction they answer (looked up by message id, so a
reply cannot speak for another node).

:func:`quicken_reply_pulls` shortens one more wait of Flower 1.41's: the
SuperLink lists a reply as soon as its SuperNode sends it, before the reply's
contents have arrived, and the ServerApp's ``Grid.pull_messages`` then waits
1 s (doubling up to 10 s) before asking for the contents again, one reply
after another.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from functools import partial

from flwr.app import Message
from flwr.serverapp import Grid

__all__ = ["exchange", "quicken_reply_pulls"]

_GRID = "flwr.superlink.grid.http_grid"
_CONTENT_BACKOFF = (0.02, 0.5)  # first and longest wait for a reply's contents


def quicken_reply_pulls() -> bool:
    """Make the ServerApp process's Grid ask again for a reply's contents after 20 ms.

    Doubling up to 0.5 s (Flower: 1 s, up to 10 s).  Returns whether it took
    effect: ``False`` where the installed Flower's Grid does not pull contents
    through the module's ``pull_objects`` (the Grid then keeps Flower's waits).
    """
    from flwr.supercore.inflatable import inflatable_utils

    grid = importlib.import_module(_GRID)
    pulls = getattr(grid, "pull_objects", None)
    if isinstance(pulls, partial) and pulls.func is inflatable_utils.pull_objects:
        return True  # already quickened
    if pulls is not inflatable_utils.pull_objects:
        return False
    grid.pull_objects = partial(  # type: ignore[attr-defined]
        pulls, initial_backoff=_CONTENT_BACKOFF[0], backoff_cap=_CONTENT_BACKOFF[1]
    )
    return True


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
