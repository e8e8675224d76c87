# x86-64 ROS 2 Jazzy desktop: builds the workspace with colcon and runs every test, the
# launch_pytest tests included (they need launch_pytest, which only a real ROS install has).
#
#   docker build -f docker/desktop.Dockerfile -t k2muse-exo:desktop .
#   docker run --rm k2muse-exo:desktop                       # colcon test
#   docker run --rm -it k2muse-exo:desktop bash              # then: ros2 launch exo_control replay.launch.py ...
FROM ros:jazzy

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_NO_CACHE_DIR=1

RUN apt-get update && apt-get install -y --no-install-recommends \
        python3-pip python3-numpy python3-scipy python3-h5py python3-matplotlib python3-yaml \
        python3-sklearn python3-joblib python3-tqdm python3-openpyxl python3-pytest \
        ros-jazzy-diagnostic-msgs ros-jazzy-sensor-msgs \
        ros-jazzy-launch-pytest ros-jazzy-launch-testing-ros \
        ros-jazzy-rosbag2-storage-mcap ros-jazzy-ros2bag \
        ros-jazzy-rqt-plot ros-jazzy-rqt-gui ros-jazzy-rqt-gui-py \
    && rm -rf /var/lib/apt/lists/*

# CPU PyTorch only: the CUDA build is several GB and a desktop test image does not need it.
RUN pip3 install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip3 install ezc3d rosbags onnx onnxruntime onnxslim safetensors pytest-timeout ruff

WORKDIR /ws
COPY pyproject.toml conftest.py ./
COPY src/ src/
COPY launch/ launch/
RUN source /opt/ros/jazzy/setup.bash && colcon build --symlink-install

CMD ["bash", "-c", "source install/setup.bash && colcon test --event-handlers console_direct+ && colcon test-result --verbose"]
