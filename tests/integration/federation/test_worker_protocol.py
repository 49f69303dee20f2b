"""The worker's local socket format and key file, on real Flower Messages and real pipes."""

from __future__ import annotations

import json
import stat
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from tests.builders.flower import set_task_identity, wire_copy

from dure.client.federation.worker_protocol import (
    WorkerProtocolError,
    authkey_path,
    ensure_authkey,
    read_authkey,
    receive,
    send,
    send_error,
)


def _instruction() -> Message:
    set_task_identity()
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.arange(6, dtype=np.float32).reshape(2, 3))}),
            "config": ConfigRecord({"round": 3, "job": b"\x00signed"}),
        }
    )
    message = Message(content, dst_node_id=5, message_type="train", group_id="3")
    message.metadata.__dict__["_message_id"] = "m-1"
    return message


def test_a_message_and_its_context_cross_the_socket_unchanged() -> None:
    message = _instruction()
    context = Context(7, 5, {"dure-site": "factory-a"}, RecordDict(), {"k": 1})
    context.state["seen"] = ConfigRecord({"n": 2})
    left, right = Pipe()
    send(left, message, context, seconds=0.5)
    received, same, header = receive(right)
    assert received.object_id == message.object_id  # Flower's own digest of every byte
    assert received.metadata.message_id == "m-1" and received.metadata.group_id == "3"
    assert received.content["config"]["job"] == b"\x00signed"
    assert same.node_config == {"dure-site": "factory-a"} and same.run_config == {"k": 1}
    assert same.state["seen"]["n"] == 2 and header["seconds"] == 0.5
    reply = Message(
        RecordDict({"config": ConfigRecord({"ok": True})}), reply_to=wire_copy(received)
    )
    send(right, reply, same)
    answer, _, _ = receive(left)
    assert answer.metadata.reply_to_message_id == "m-1" and answer.object_id == reply.object_id


def test_an_error_or_a_foreign_header_is_refused() -> None:
    left, right = Pipe()
    send_error(left, "the ClientApp raised")
    with pytest.raises(WorkerProtocolError, match="the ClientApp raised"):
        receive(right)
    left.send_bytes(json.dumps({"v": 99}).encode())
    with pytest.raises(WorkerProtocolError, match="version"):
        receive(right)
    left.send_bytes(b"not json")
    with pytest.raises(WorkerProtocolError, match="not JSON"):
        receive(right)
    left.send_bytes(json.dumps({"v": 1, "root": "r", "message_id": "m", "objects": ["r"]}).encode())
    left.send_bytes(b"garbage")
    left.send_bytes(b"")
    with pytest.raises(WorkerProtocolError, match="undecodable"):
        receive(right)


def test_the_key_is_created_private_once_and_an_open_key_is_refused(tmp_path: Path) -> None:
    address = tmp_path / "run" / "worker.sock"
    key = ensure_authkey(address)
    path = authkey_path(address)
    assert path == tmp_path / "run" / "worker.sock.key" and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_authkey(address) == key == read_authkey(address)
    path.chmod(0o644)
    with pytest.raises(WorkerProtocolError, match="must be mode 0600"):
        read_authkey(address)
    with pytest.raises(WorkerProtocolError, match="cannot read"):
        read_authkey(tmp_path / "elsewhere.sock")
