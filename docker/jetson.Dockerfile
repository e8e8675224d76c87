# Jetson Orin NX (JetPack 6, L4T r36, Ubuntu 22.04, aarch64): ROS 2 Humble + CUDA + TensorRT.
# JetPack 6 ships Ubuntu 22.04, whose ROS 2 release is Humble; the workspace builds on Humble
# and Jazzy alike. TensorRT's Python bindings come with the L4T JetPack base image.
#
#   docker build -f docker/jetson.Dockerfile -t k2muse-exo:jetson .          # on the Jetson
#   docker run --rm -it --runtime nvidia --network host --ipc host \
#       -v $PWD/models:/models k2muse-exo:jetson \
#       ros2 launch exo_control assist.launch.py model_folder:=/models/P01 backend:=tensorrt
#
# Engines are specific to the GPU and TensorRT version: build them on the Jetson
# (k2muse-tcn export --tensorrt, see docs/tcn.md), never copy them from a desktop.
ARG L4T_IMAGE=nvcr.io/nvidia/l4t-jetpack:r36.4.0
FROM ${L4T_IMAGE}

# PyTorch and onnxruntime-gpu wheels built for JetPack 6 / CUDA 12.6.
ARG JETSON_PIP_INDEX=https://pypi.jetson-ai-lab.dev/jp6/cu126

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    ROS_DISTRO=humble \
    PIP_NO_CACHE_DIR=1

RUN apt-get update && apt-get install -y --no-install-recommends curl gnupg lsb-release ca-certificates \
 && curl -sSL https://raw.githubusercontent.com/ros/rosdistro/master/ros.key \
        -o /usr/share/keyrings/ros-archive-keyring.gpg \
 && echo "deb [arch=$(dpkg --print-architecture) signed-by=/usr/share/keyrings/ros-archive-keyring.gpg] http://packages.ros.org/ros2/ubuntu $(lsb_release -cs) main" \
        > /etc/apt/sources.list.d/ros2.list \
 && apt-get update && apt-get install -y --no-install-recommends \
        ros-humble-ros-base ros-humble-diagnostic-msgs ros-humble-sensor-msgs \
        ros-humble-launch-pytest ros-humble-rosbag2-storage-mcap \
        ros-humble-rosidl-default-generators \
        python3-colcon-common-extensions python3-pip python3-numpy python3-scipy python3-h5py \
        python3-matplotlib python3-yaml python3-sklearn python3-joblib python3-tqdm \
        python3-openpyxl python3-pytest python3-libnvinfer \
    && rm -rf /var/lib/apt/lists/*

RUN pip3 install --extra-index-url "${JETSON_PIP_INDEX}" torch onnxruntime-gpu \
 && pip3 install ezc3d rosbags onnx onnxslim safetensors cuda-python pytest-timeout

WORKDIR /ws
COPY pyproject.toml conftest.py ./
COPY src/ src/
COPY launch/ launch/
RUN source /opt/ros/humble/setup.bash && colcon build --symlink-install

RUN printf 'source /opt/ros/humble/setup.bash\nsource /ws/install/setup.bash\nexec "$@"\n' > /entrypoint.sh
ENTRYPOINT ["bash", "/entrypoint.sh"]
CMD ["ros2", "launch", "exo_control", "assist.launch.py"]
