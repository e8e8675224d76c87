from glob import glob

from setuptools import find_packages, setup

package_name = "exo_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="K2MUSE exo maintainers",
    maintainer_email="maintainers@k2muse-exo.dev",
    description=(
        "System launch of the hip-exoskeleton assistance graph and its parameter files;"
        " exo-demo, the whole mission end to end."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "exo-demo = exo_bringup.cli_entries:exo_demo",
        ],
    },
)
