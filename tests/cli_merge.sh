#!/bin/bash
# graft merge / taskvec / rebase end to end (tests/util/merge_cli_check.py):
# synthetic models, mergekit configs, numpy reference, bad inputs, atomic output.
set -euo pipefail
work="${GRAFT_TMP:-/tmp}/cli_merge.$$"
mkdir -p "$(dirname "$work")"
exec "${GRAFT_PYTHON:-/usr/bin/python3}" "$GRAFT_SRC/tests/util/merge_cli_check.py" "$1" "$work"
