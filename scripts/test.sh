#!/usr/bin/env bash
# Install postkit (with test extras) into .venv and run the whole test suite.
source "$(dirname "$0")/_venv.sh"
install_postkit "[test]"
# .venv/bin/pytest (not python -m pytest) so tests import the installed package, as users get it.
exec .venv/bin/pytest "$@"
