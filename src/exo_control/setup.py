from glob import glob

from setuptools import find_packages, setup

package_name = "exo_control"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        # rqt perspective and PlotJuggler layout: estimate vs measured moment, force tracking
        ("share/" + package_name + "/config",
         glob("config/*.perspective") + glob("config/*.xml")),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="K2MUSE exo maintainers",
    maintainer_email="maintainers@k2muse-exo.dev",
    description=(
        "Hip-exoskeleton assistance: force profile, admittance + PD control, simulated"
        " Bowden-cable actuator, trial replay and recording."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "assistance_profile = exo_control.node_entries:assistance_profile",
            "admittance_controller = exo_control.node_entries:admittance_controller",
            "simulated_actuator = exo_control.node_entries:simulated_actuator",
            "trial_replay = exo_control.node_entries:trial_replay",
            "topic_recorder = exo_control.node_entries:topic_recorder",
            "exo-analyze = exo_control.cli_entries:exo_analyze",
        ],
    },
)
