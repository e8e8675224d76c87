from glob import glob

from setuptools import find_packages, setup

package_name = "k2muse_learning"

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
    zip_safe=True,
    maintainer="K2MUSE exo maintainers",
    maintainer_email="maintainers@k2muse-exo.dev",
    description=(
        "Joint-angle regression, gait-phase classification and TCN hip-moment estimation"
        " on K2MUSE, with ONNX/TensorRT export."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "k2muse-baselines = k2muse_learning.cli_entries:k2muse_baselines",
            "k2muse-tcn = k2muse_learning.cli_entries:k2muse_tcn",
        ],
    },
)
