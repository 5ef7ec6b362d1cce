#!/bin/bash
# graft finetune --peft and graft peft merge|unmerge end to end
# (tests/util/peft_cli_check.py): LoRA adapter dirs loaded by PEFT's rules
# reimplemented in numpy, merged weights, merge/unmerge round trips for
# LoRA/rsLoRA/DoRA/IA3, bad inputs and exit codes.
set -euo pipefail
work="${GRAFT_TMP:-/tmp}/cli_peft.$$"
mkdir -p "$(dirname "$work")"
exec "${GRAFT_PYTHON:-/usr/bin/python3}" "$GRAFT_SRC/tests/util/peft_cli_check.py" "$1" "$work"
