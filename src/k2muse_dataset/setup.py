from setuptools import find_packages, setup

package_name = "k2muse_dataset"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="K2MUSE exo maintainers",
    maintainer_email="maintainers@k2muse-exo.dev",
    description=(
        "Readers, processing, plots and rosbag2 export for the K2MUSE lower-limb walking"
        " dataset."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "k2muse = k2muse_dataset.cli_entries:k2muse",
        ],
    },
)
