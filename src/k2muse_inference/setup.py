from glob import glob

from setuptools import find_packages, setup

package_name = "k2muse_inference"

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
        "ROS 2 node estimating hip moment from hip angle with a per-mode TCN ensemble on"
        " TensorRT, ONNX Runtime or PyTorch."
    ),
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "hip_moment_estimator = k2muse_inference.node_entries:hip_moment_estimator",
        ],
    },
)
