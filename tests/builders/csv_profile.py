"""A minimal CSV site profile (one state column, one action column) for ingest tests."""

from __future__ import annotations

from typing import Any

__all__ = ["csv_profile"]


def csv_profile(
    time_column: str, state_field: str, state_unit: str | None = None, **changes: Any
) -> dict[str, Any]:
    """The profile's JSON: ``state_field`` (in ``state_unit``) as ``x``, ``cmd`` as ``dx``.

    Time is ``time_column`` in milliseconds, one episode per file, task ``pick``, 10 fps;
    ``changes`` replace top-level keys (``resampling``, ``csv``…).
    """
    state: dict[str, Any] = {"fields": [state_field], "names": ["x"]}
    if state_unit is not None:
        state["unit"] = state_unit
    return {
        "format": "csv",
        "fps": 10,
        "features": {
            "observation.state": [state],
            "action": [{"fields": ["cmd"], "names": ["dx"]}],
        },
        "time": {"column": time_column, "unit": "ms"},
        "segmentation": {"method": "per-file"},
        "task": {"fixed": "pick"},
        "context": {
            "site": "acme",
            "cell": "c1",
            "robot": "r1",
            "embodiment": "sawyer",
            "operator": "3f2a9c0d11e4b7a8",
            "source": "scripted",
        },
        "action_space": {
            "kind": "end-effector",
            "mode": "delta",
            "frame": "world",
            "gripper": "closed-positive",
        },
        **changes,
    }
