"""The wire format: both sides agree, and replies decode as they were built."""

from __future__ import annotations

import json

import numpy as np
import pytest
from flwr.app import ConfigRecord, Error, Message, RecordDict
from tests.builders.flower import set_task_identity, wire_copy

from dure.client.federation import wire as client_wire
from dure.server.federation import wire as server_wire


@pytest.fixture(autouse=True)
def _task_identity() -> None:
    set_task_identity()


def test_both_sides_name_the_same_message_types_and_codes() -> None:
    for name in ("TRAIN", "IDENTIFY", "STATS", "RECEIPTS", "REFUSED", "NOTHING_SELECTED"):
        assert getattr(client_wire, name) == getattr(server_wire, name), name


def _instruction() -> Message:
    arrays = server_wire.array_record({"w": np.ones((2, 2), np.float32)})
    config = ConfigRecord(
        {
            "job": b"{}",
            "round": 1,
            "site": "factory-a",
            "parent-model": "ab" * 32,
            "task-vocab": '["t"]',
            "stats": "{}",
            "local-steps": 3,
            "lr": 0.1,
            "proximal-mu": 0.0,
            "seed": 4,
            "receipts": "[]",
        }
    )
    message = server_wire.train_message(101, arrays, config, 1)
    message.metadata.__dict__["_message_id"] = "m1"
    return wire_copy(message)


def test_a_train_instruction_and_its_reply_round_trip() -> None:
    request = client_wire.TrainRequest.from_message(_instruction())
    assert request.tasks == ("t",) and request.local_steps == 3 and request.dp_clip is None
    reply = client_wire.train_reply(
        _instruction(), {"w": request.arrays["w"] * 2}, 12, 0.5, b"claim"
    )
    decoded = server_wire.parse_train_reply(wire_copy(reply))
    assert decoded.examples == 12 and decoded.claim == b"claim" and decoded.loss == 0.5
    np.testing.assert_array_equal(decoded.arrays["w"], np.full((2, 2), 2, np.float32))


def test_malformed_replies_are_reported() -> None:
    empty = Message(RecordDict({}), reply_to=_instruction())
    with pytest.raises(server_wire.ReplyError, match="lacks the record"):
        server_wire.parse_train_reply(empty)
    with pytest.raises(client_wire.RequestError):
        client_wire.TrainRequest.from_message(
            Message(RecordDict({"config": ConfigRecord({})}), dst_node_id=1, message_type="train")
        )


def test_refusals_carry_the_reasons_the_coordinator_ledgers() -> None:
    refusal = client_wire.refusal(
        _instruction(), 1001, "urn:dure:site:a", "job", ["[x] no", "[y] never"]
    )
    assert json.loads(refusal.error.reason or "")["reasons"] == ["[x] no", "[y] never"]
    assert server_wire.error_reasons(refusal) == [
        "the factory refused (code 1001): [x] no",
        "the factory refused (code 1001): [y] never",
    ]
    crashed = Message(Error(code=2, reason="boom"), reply_to=_instruction())
    assert server_wire.error_reasons(crashed) == ["no valid reply: Flower error 2: boom"]
