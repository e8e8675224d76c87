"""Node command lines of the graph run as processes."""

from exo_control.graph_processes import ros_arguments


def test_ros_arguments_use_yaml_values(tmp_path):
    args = ros_arguments({"loop": True, "rate_scale": 2.0, "joint_names": ["a", "b"],
                          "trial_file": "/x y/t.h5"}, [tmp_path / "p.yaml"])
    assert args == ["--ros-args", "--params-file", str(tmp_path / "p.yaml"),
                    "-p", "loop:=true", "-p", "rate_scale:=2.0", "-p", "joint_names:=[a, b]",
                    "-p", "trial_file:=/x y/t.h5"]
