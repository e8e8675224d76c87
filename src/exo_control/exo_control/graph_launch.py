"""Launch actions for the nodes of :mod:`exo_control.graph` (imported by the launch files only).

Every node gets its parameter files from the graph description, found through the ament index
as ``ros2 launch`` resolves them, then the per-launch overrides on top.
"""

from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from .graph import GraphNode


def launch_node(node: GraphNode, *parameters, **kwargs) -> Node:
    """``node`` with its parameter files, then ``parameters`` (files or dicts) over them."""
    files = [PathJoinSubstitution([FindPackageShare(f.package), f.path])
             for f in node.parameter_files]
    return Node(package=node.package, executable=node.executable, name=node.name,
                output="screen", parameters=[*files, *parameters],
                remappings=list(node.remappings), **kwargs)


def same_named(*names: str) -> dict[str, LaunchConfiguration]:
    """Parameters set by the launch arguments of the same names."""
    return {name: LaunchConfiguration(name) for name in names}
