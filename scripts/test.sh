#!/usr/bin/env bash
# Install postkit (with test extras) into .venv and run the whole test suite.
source "$(dirname "$0")/_venv.sh"
install_postkit "[test]"
exec .venv/bin/python -m pytest "$@"
