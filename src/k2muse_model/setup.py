from setuptools import find_packages, setup

package_name = "k2muse_model"

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
        "The model contract between training and inference: model-folder manifest, hashes and"
        " file resolution, the input features, the TCN module and its weight loader, and the"
        " TensorRT engine runner."
    ),
    license="Apache-2.0",
)
