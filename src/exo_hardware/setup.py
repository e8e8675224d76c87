from glob import glob

from setuptools import find_packages, setup

package_name = "exo_hardware"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    # The hardware libraries are optional: the simulated graph and the tests never need them.
    extras_require={
        "tmotor": ["opensourceleg==3.5.0", "python-can==4.6.1"],
        "dephy": ["opensourceleg==3.5.0", "flexsea"],
    },
    zip_safe=True,
    maintainer="K2MUSE exo maintainers",
    maintainer_email="maintainers@k2muse-exo.dev",
    description=(
        "Hip-exoskeleton hardware through opensourceleg: T-Motor and Dephy cable-actuator"
        " drivers for the fast force loop, live hip angles with zero-posture calibration."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "hip_angle_publisher = exo_hardware.node_entries:hip_angle_publisher",
        ],
        "exo_control.actuator_drivers": [
            "tmotor = exo_hardware.drivers:tmotor",
            "dephy = exo_hardware.drivers:dephy",
        ],
    },
)
