#!/usr/bin/env bash
# Install the peer simulators used by the side-by-side benchmarks, each in a virtual environment
# of its own (git-ignored), so their pins never meet the project's:
#   bench/.venv-scalesim  SCALE-Sim v3 (needs numpy<2.4: with 2.4 every layer fails at the end)
#   bench/.venv-zigzag    ZigZag (zigzag-dse; `six` is an undeclared dependency) + onnx for its ONNX front end
# Idempotent: a venv with its stamp file is left alone. Usage: bash bench/setup_peers.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

make_venv() {  # make_venv <dir> <pip requirement>...
    local dir="$1"; shift
    if [ -f "$dir/.installed" ]; then
        echo "ok: $dir (already installed)"
        return
    fi
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
    "$dir/bin/python" -m pip install -q "$@"
    touch "$dir/.installed"
    echo "installed: $dir"
}

make_venv "$here/.venv-scalesim" "scalesim==3.0.0" "numpy<2.4"
make_venv "$here/.venv-zigzag" "zigzag-dse" "six" "onnx"
"$here/.venv-scalesim/bin/python" -c "import scalesim, numpy; print('scalesim ok, numpy', numpy.__version__)"
"$here/.venv-zigzag/bin/python" -c "import zigzag, importlib.metadata as m; print('zigzag-dse', m.version('zigzag-dse'))"
