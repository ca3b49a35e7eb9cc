# Sourced by the device_*.sh scripts: a GPU machine with CUDA JAX, flax, optax and chex but
# no network. gymnax, gymnasium and farama-notifications travel as wheels in .whl/:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl gymnax==1.0.1 gymnasium==1.3.0 farama-notifications
# Installs them into /tmp/site, puts the repository on PYTHONPATH, sets OUT (default
# /tmp/out) and prints the GPU.
# `python3 -m` puts the checkout first on sys.path, where purejaxvpg/ has no envs/ (the wheel maps
# the top-level envs/ to purejaxvpg.envs): a link gives the checkout the installed layout (the
# device's copy of the tree only; it is not committed).
ln -sfn ../envs purejaxvpg/envs
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
OUT=${OUT:-/tmp/out}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
