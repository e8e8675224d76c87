#!/usr/bin/env bash
# Run a command (the tests) in the workspace overlay: the packages built with
# `colcon build --symlink-install` into build/ and install/ at the repository root, over the
# virtual environment as underlay, and sourced. That overlay holds what `ros2 launch` and the
# launch tests need and an editable install lacks: the ament index entries, the share folders
# (launch files, config) and the node executables in lib/<package>.
# Where the environment has no launch stack or no colcon, the command runs as it is and the
# launch tests skip with the reason.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${K2MUSE_VENV:-$root/.venv}"
vpy="$venv/bin/python"

if ! "$vpy" -c 'import colcon_core, launch_pytest, launch_ros' 2>/dev/null; then
  echo "[overlay] no ROS 2 launch stack or colcon in $venv: running without the overlay" >&2
  exec "$@"
fi

cd "$root"
export AMENT_PREFIX_PATH="$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export PATH="$venv/bin:$PATH"
mkdir -p log
{
  flock 9  # parallel test runs share one overlay
  echo "[overlay] colcon build --symlink-install (log: log/colcon-build.log)" >&2
  # colcon runs under the venv's interpreter: it writes sys.executable into the node scripts.
  # exo_msgs is already built into the venv from the same source by tools/setup_env.sh.
  "$vpy" -m colcon build --symlink-install --base-paths src --packages-ignore exo_msgs \
    --cmake-args -DPython3_EXECUTABLE="$vpy" >log/colcon-build.log 2>&1 ||
    { tail -40 log/colcon-build.log >&2; exit 1; }
} 9>"$root/log/.overlay.lock"

# colcon's setup scripts read unset variables.
set +u
# shellcheck source=/dev/null
source "$root/install/setup.bash"
set -u
exec "$@"
