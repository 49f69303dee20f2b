"""Ingest benchmarks: standardisation, end-to-end ROS 2 bag / MCAP ingest, plain rosbags.

1. Standardisation of already-decoded arrays (select, convert, resample onto the grid,
   validate, write Parquet): scalar samples per second on one core.
2. End-to-end ingest of a ROS 2 bag (SQLite 3) and an MCAP bag: a cell logging 21 joint
   positions at 500 Hz in degrees (sensor_msgs/JointState with velocity and effort),
   a 6-axis wrench at 1 kHz and a 7-D command at 100 Hz, cut into 30 s episodes by
   markers: scalar samples (the mapped numbers) per second, and the child process's
   peak RSS.
3. The same bags read and deserialised by plain ``rosbags`` (``deserialize_cdr`` per
   message), side by side, as a ratio.

Environment: ``DURE_BENCH_BAG_MB`` sets the bag size (default 64 MB; the 2 GB figure
is ``DURE_BENCH_BAG_MB=2048``).  Everything runs in single-threaded child processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

JOINTS = 21
JOINT_HZ, FORCE_HZ, CMD_HZ = 500, 1000, 100
EPISODE_S = 30
S = 1_000_000_000
START = 1_740_981_600 * S
JOINT_NAMES = [f"joint_{i:02d}" for i in range(JOINTS)]


def _profile(storage: str) -> dict[str, Any]:
    return {
        "format": "mcap" if storage == "mcap" else "rosbag",
        "fps": 50,
        "resampling": "zoh",
        "features": {
            "observation.state": [
                {
                    "stream": "/joint_states",
                    "fields": ["position"],
                    "select": JOINT_NAMES[::-1],
                    "unit": "deg",
                }
            ],
            "observation.force": [
                {
                    "stream": "/wrench",
                    "fields": [f"wrench.{k}.{a}" for k in ("force", "torque") for a in "xyz"],
                    "names": ["fx", "fy", "fz", "tx", "ty", "tz"],
                    "unit": ["N"] * 3 + ["N*m"] * 3,
                }
            ],
            "action": [
                {"stream": "/cmd", "fields": ["data"], "names": [f"u{i}" for i in range(7)]}
            ],
        },
        "segmentation": {"method": "marker", "stream": "/marker"},
        "task": {"fixed": "weld-seam"},
        "context": {
            "site": "bench",
            "cell": "c1",
            "robot": "r1",
            "embodiment": "ur",
            "operator": "0123456789abcdef",
            "source": "teleoperation",
        },
        "action_space": {"kind": "joint", "mode": "absolute", "frame": "base", "gripper": "none"},
    }


# --- writing a large bag quickly: serialise one template per topic, patch numbers ---


def _templates(ts: Any) -> dict[str, tuple[bytes, int, int]]:
    """Return topic -> (template bytes, offset of the first patched double, count)."""
    t = ts.types
    stamp = t["builtin_interfaces/msg/Time"](sec=0, nanosec=0)
    header = t["std_msgs/msg/Header"](stamp=stamp, frame_id="base")
    sentinel = np.arange(JOINTS, dtype=np.float64) + 1e300
    js = t["sensor_msgs/msg/JointState"](
        header=header,
        name=JOINT_NAMES,
        position=sentinel,
        velocity=sentinel * 0,
        effort=sentinel * 0,
    )
    vec = t["geometry_msgs/msg/Vector3"]
    wrench = t["geometry_msgs/msg/WrenchStamped"](
        header=header,
        wrench=t["geometry_msgs/msg/Wrench"](
            force=vec(x=1e300, y=0.0, z=0.0), torque=vec(x=0.0, y=0.0, z=0.0)
        ),
    )
    layout = t["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    cmd = t["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.full(7, 1e300))
    out = {}
    for topic, msg, kind, count in (
        ("/joint_states", js, "sensor_msgs/msg/JointState", JOINTS),
        ("/wrench", wrench, "geometry_msgs/msg/WrenchStamped", 6),
        ("/cmd", cmd, "std_msgs/msg/Float64MultiArray", 7),
    ):
        raw = bytes(ts.serialize_cdr(msg, kind))
        out[topic] = (raw, raw.index(np.float64(1e300).tobytes()), count)
    return out


def _batch(
    template: tuple[bytes, int, int], t_ns: np.ndarray, values: np.ndarray, stamped: bool
) -> np.ndarray:
    raw, offset, count = template
    rows = np.frombuffer(raw, dtype=np.uint8)[None, :].repeat(len(t_ns), axis=0)
    rows[:, offset : offset + 8 * count] = (
        values.astype("<f8").view(np.uint8).reshape(len(t_ns), -1)
    )
    if stamped:
        rows[:, 4:8] = (t_ns // S).astype("<i4").view(np.uint8).reshape(-1, 4)
        rows[:, 8:12] = (t_ns % S).astype("<u4").view(np.uint8).reshape(-1, 4)
    return rows


def write_bag(path: Path, megabytes: int, storage: str) -> dict[str, int]:
    """Write a bag of about ``megabytes`` MB; return message and scalar counts."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    templates = _templates(ts)
    per_s = sum(
        len(templates[k][0]) * hz
        for k, hz in (("/joint_states", JOINT_HZ), ("/wrench", FORCE_HZ), ("/cmd", CMD_HZ))
    )
    episodes = max(1, round(megabytes * 1e6 / (per_s * EPISODE_S)))
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    rng = np.random.default_rng(0)
    counts = {"messages": 0, "scalars": 0, "episodes": episodes}
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {
            "/joint_states": writer.add_connection(
                "/joint_states", "sensor_msgs/msg/JointState", typestore=ts
            ),
            "/wrench": writer.add_connection(
                "/wrench", "geometry_msgs/msg/WrenchStamped", typestore=ts
            ),
            "/cmd": writer.add_connection("/cmd", "std_msgs/msg/Float64MultiArray", typestore=ts),
            "/marker": writer.add_connection("/marker", "std_msgs/msg/String", typestore=ts),
        }
        start_raw = bytes(
            ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="start"), "std_msgs/msg/String")
        )
        end_raw = bytes(
            ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="end"), "std_msgs/msg/String")
        )
        for e in range(episodes):
            t0 = START + e * (EPISODE_S + 2) * S
            messages: list[tuple[int, str, bytes]] = [(t0, "/marker", start_raw)]
            for topic, hz, width, stamped in (
                ("/joint_states", JOINT_HZ, JOINTS, True),
                ("/wrench", FORCE_HZ, 6, True),
                ("/cmd", CMD_HZ, 7, False),
            ):
                t_ns = t0 + np.arange(EPISODE_S * hz + 1, dtype=np.int64) * (S // hz)
                values = np.cumsum(rng.normal(size=(len(t_ns), width)), axis=0)
                rows = _batch(templates[topic], t_ns, values, stamped)
                messages.extend(
                    zip(
                        t_ns.tolist(), [topic] * len(t_ns), [r.tobytes() for r in rows], strict=True
                    )
                )
                counts["scalars"] += len(t_ns) * width
            messages.append((t0 + EPISODE_S * S, "/marker", end_raw))
            messages.sort(key=lambda m: m[0])
            for t, topic, raw in messages:
                writer.write(conns[topic], t, raw)
            counts["messages"] += len(messages)
    return counts


# --- the measurements, each run in a child process (one core, its own peak RSS) ---


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, bag: str, storage: str) -> dict[str, float]:
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    started = time.perf_counter()
    if kind == "ingest":
        from dure.client.episodes.profile import SiteProfile
        from dure.client.importers.ingest import iter_episodes

        profile = SiteProfile.model_validate(_profile(storage))
        frames = sum(ep.n_frames for ep in iter_episodes(Path(bag), profile))
    else:
        frames = _rosbags_only(Path(bag))
    elapsed = time.perf_counter() - started
    peak_mb = _peak_rss_mb()
    return {"seconds": elapsed, "peak_rss_mb": peak_mb, "frames": float(frames)}


def _rosbags_only(bag: Path) -> int:
    """Read every message of the mapped topics and deserialise it with rosbags."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    n = 0
    with Reader(bag) as reader:
        for conn, _, raw in reader.messages(connections=reader.connections):
            ts.deserialize_cdr(raw, conn.msgtype)
            n += 1
    return n


def _run_child(kind: str, bag: Path, storage: str) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    call = f"b._child({kind!r}, {str(bag)!r}, {storage!r})"
    code = f"import json, benchmarks.ingest_bench as b; print(json.dumps({call}))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=Path(__file__).parent.parent,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_standardise(seconds: int = 120, repeats: int = 3) -> dict[str, float]:
    """Standardise decoded arrays (21 joints @ 500 Hz, wrench @ 1 kHz, 7-D command @ 100 Hz)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dure.client.episodes.profile import SiteProfile
    from dure.client.episodes.standardise import RawEpisode, Stream, standardise

    pa.set_cpu_count(1)
    profile = SiteProfile.model_validate(_profile("sqlite3"))
    rng = np.random.default_rng(1)

    def stream(name: str, hz: int, width: int, names: list[str] | None = None) -> Stream:
        t = START + np.arange(seconds * hz + 1, dtype=np.int64) * (S // hz)
        return Stream(
            name,
            t,
            np.cumsum(rng.normal(size=(len(t), width)), axis=0),
            tuple(names) if names else None,
        )

    raw = RawEpisode(
        source_uri="bench",
        source_sha256="00" * 32,
        index=0,
        start_ns=START,
        end_ns=START + seconds * S,
        features={
            "observation.state": [stream("/joint_states", JOINT_HZ, JOINTS, JOINT_NAMES)],
            "observation.force": [stream("/wrench", FORCE_HZ, 6)],
            "action": [stream("/cmd", CMD_HZ, 7)],
        },
        task="bench",
        instruction="bench",
    )
    scalars = sum(s.values.size for streams in raw.features.values() for s in streams)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        episode = standardise(raw, profile, "bench")
        columns = {
            k: pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1])
            for k, v in episode.frames.observation.items()
        }
        columns["action"] = pa.FixedSizeListArray.from_arrays(
            pa.array(episode.frames.action.ravel()), 7
        )
        columns["timestamp"] = pa.array(episode.frames.timestamp)
        pq.write_table(pa.table(columns), io.BytesIO())
        best = min(best, time.perf_counter() - started)
    return {"standardise_scalars_per_s": scalars / best, "standardise_scalars": float(scalars)}


def main() -> dict[str, float]:
    """Run the three benchmarks and print their figures."""
    megabytes = int(os.environ.get("DURE_BENCH_BAG_MB", "64"))
    figures = bench_standardise()
    rate = figures["standardise_scalars_per_s"]
    print(f"standardise: {rate / 1e6:.1f} M scalar samples/s (target >= 10)")
    with tempfile.TemporaryDirectory() as scratch:
        for storage in ("sqlite3", "mcap"):
            bag = Path(scratch) / f"bag-{storage}"
            counts = write_bag(bag, megabytes, storage)
            size_mb = sum(p.stat().st_size for p in bag.rglob("*") if p.is_file()) / 1e6
            ours = _run_child("ingest", bag, storage)
            theirs = _run_child("rosbags", bag, storage)
            rate = counts["scalars"] / ours["seconds"]
            base = counts["scalars"] / theirs["seconds"]
            key = "rosbag" if storage == "sqlite3" else "mcap"
            figures.update(
                {
                    f"{key}_bag_mb": size_mb,
                    f"{key}_ingest_scalars_per_s": rate,
                    f"{key}_ingest_peak_rss_mb": ours["peak_rss_mb"],
                    f"{key}_rosbags_scalars_per_s": base,
                    f"{key}_rosbags_peak_rss_mb": theirs["peak_rss_mb"],
                    f"{key}_speedup_over_rosbags": rate / base,
                }
            )
            print(
                f"{key}: {size_mb:.0f} MB, {counts['messages']} msgs, "
                f"{counts['scalars']} scalars in {counts['episodes']} episodes | "
                f"dure ingest {rate / 1e6:.2f} M/s, "
                f"peak {ours['peak_rss_mb']:.0f} MB | rosbags read+deserialise "
                f"{base / 1e6:.2f} M/s, peak {theirs['peak_rss_mb']:.0f} MB | "
                f"ratio {rate / base:.1f}x"
            )
    return figures


if __name__ == "__main__":
    main()
