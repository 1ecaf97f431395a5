#!/usr/bin/env bash
# Install postkit (with test extras) into .venv and run the whole test suite.
source "$(dirname "$0")/_venv.sh"
install_postkit "[test,dense,dask]"
# The review app's browser tests drive the system Chromium (never `playwright install`).
if [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null; then
    SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# .venv/bin/pytest (not python -m pytest) so tests import the installed package, as users get it.
exec .venv/bin/pytest "$@"
