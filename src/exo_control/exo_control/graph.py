"""The assistance graph, described once: each node's package, executable, files and graphs.

The launch files (exo_control's assist and replay, exo_bringup's system launch), ``exo-demo``,
the benchmarks and the whole-graph tests all start their nodes from :data:`NODES`, so a node, a
parameter file or a remapping is added here and nowhere else. Plain data and path look-ups: no
rclpy and no launch import (``exo_control.graph_launch`` turns an entry into a launch action).

Every node's name is the section of its parameter files (``<name>: ros__parameters:``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

LIVE = "live"  # encoders and the actuator (or its simulation) on the exo
REPLAY = "replay"  # a recorded trial stands in for the encoders
SOURCE_TREE = Path(__file__).resolve().parents[2]  # src/ of a source checkout


@dataclass(frozen=True)
class ParameterFile:
    """A parameter YAML shipped in a package's share folder."""

    package: str
    path: str  # relative to share/<package>/


@dataclass(frozen=True)
class GraphNode:
    """One node of the graph and how every starter runs it."""

    package: str
    executable: str
    name: str
    parameter_files: tuple[ParameterFile, ...]
    graphs: frozenset[str] = frozenset({LIVE, REPLAY})
    remappings: tuple[tuple[str, str], ...] = ()  # (from, to) topic names
    on_request: bool = False  # started only when asked (a launch argument, a recording)


def _own(package: str, name: str, yaml: str, **kwargs) -> GraphNode:
    """A node named like its executable, configured by its own package's config/<yaml>."""
    return GraphNode(package, name, name, (ParameterFile(package, f"config/{yaml}"),), **kwargs)


ESTIMATOR = _own("k2muse_inference", "hip_moment_estimator", "estimator.yaml")
ASSISTANCE = _own("exo_control", "assistance_profile", "assistance.yaml")
CONTROLLER = _own("exo_control", "admittance_controller", "controller.yaml")
ACTUATOR = _own("exo_control", "simulated_actuator", "actuator.yaml")
TRIAL_REPLAY = _own("exo_control", "trial_replay", "replay.yaml", graphs=frozenset({REPLAY}))
HIP_ANGLES = _own("exo_hardware", "hip_angle_publisher", "hip_angle.yaml",
                  graphs=frozenset({LIVE}), on_request=True)
RECORDER = GraphNode("exo_control", "topic_recorder", "topic_recorder",
                     (ParameterFile("exo_bringup", "config/recorder.yaml"),), on_request=True)

NODES = (TRIAL_REPLAY, HIP_ANGLES, ESTIMATOR, ASSISTANCE, CONTROLLER, ACTUATOR, RECORDER)
CHAIN = (ESTIMATOR, ASSISTANCE, CONTROLLER, ACTUATOR)  # joint states in, cable force out


def graph_nodes(graph: str, requested: tuple[GraphNode, ...] = ()) -> tuple[GraphNode, ...]:
    """The nodes of ``graph`` that always run, plus the ``requested`` on-request ones."""
    if graph not in (LIVE, REPLAY):
        raise ValueError(f"unknown graph {graph!r}: {LIVE} or {REPLAY}")
    return tuple(n for n in NODES
                 if graph in n.graphs and (not n.on_request or n in requested))


def share_file(parameter_file: ParameterFile) -> Path:
    """The installed file (AMENT_PREFIX_PATH, this interpreter's prefix), else the source one."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    relative = Path("share") / parameter_file.package / parameter_file.path
    for candidate in [*(Path(p) / relative for p in prefixes), Path(sys.prefix) / relative,
                      SOURCE_TREE / parameter_file.package / parameter_file.path]:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{parameter_file.package}/{parameter_file.path}: neither installed"
                            " nor in the source tree")


def parameter_files(nodes: tuple[GraphNode, ...]) -> list[Path]:
    """The parameter files of ``nodes``, in order, each once."""
    files = [share_file(f) for node in nodes for f in node.parameter_files]
    return list(dict.fromkeys(files))
