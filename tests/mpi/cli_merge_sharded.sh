#!/bin/bash
# Sharded merge: `mpirun -np 2 graft-mpi merge` writes files byte-identical
# to `graft merge` (ties; dare_ties to bf16 with a seed; sharded output),
# and a bad input shard stops every rank with a non-zero exit and no output.
set -u
GM=$1
G=$2
RUN=${GRAFT_MPIRUN:-mpirun -np 2 --oversubscribe --allow-run-as-root}
T=${GRAFT_TMP:-/tmp}/mpi_cli_merge_sharded.$$
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
/usr/bin/python3 "${GRAFT_SRC:-.}/tests/mpi/merge_models.py" "$T" || exit 1

same_dirs() { # every file of $1 equals the file of the same name in $2, and the lists match
  [ "$(ls "$1")" = "$(ls "$2")" ] || return 1
  for f in "$1"/*; do cmp "$f" "$2/$(basename "$f")" || return 1; done
}
for c in "ties" "dare_ties --seed 11" "ties --out-shard-size 3K"; do
  set -- $c
  name=${1}_$#
  cfg=$1; shift
  "$G" merge "$T/$cfg.yml" --out "$T/one_$name" --quiet "$@" >"$T/o" 2>"$T/e"
  check "$c: graft merge" '[ $? -eq 0 ]' || cat "$T/e"
  $RUN "$GM" merge "$T/$cfg.yml" --out "$T/two_$name" --quiet "$@" >"$T/o2" 2>"$T/e2"
  check "$c: mpirun -np 2 graft-mpi merge" '[ $? -eq 0 ]' || cat "$T/e2"
  check "$c: byte-identical output ($(ls "$T/two_$name" | wc -l) files)" 'same_dirs "$T/one_$name" "$T/two_$name"'
  check "$c: rank 0 alone prints the summary" '[ $(grep -c "^graft merge: read" "$T/o2") -eq 1 ]'
done
check "sharded output has several shards" '[ $(ls "$T/two_ties_3" | grep -c "^model-") -ge 2 ]'
# The comparison can fail: another seed gives other DARE masks.
"$G" merge "$T/dare_ties.yml" --out "$T/one_seed12" --quiet --seed 12 >/dev/null 2>&1
check "a different seed differs" '! same_dirs "$T/one_dare_ties_3" "$T/one_seed12" >/dev/null 2>&1'

# A truncated input shard: every rank stops, non-zero exit, no output dir.
f=$(ls "$T"/m1/*.safetensors | head -1)
head -c 300 "$f" >"$f.cut" && mv "$f.cut" "$f"
$RUN "$GM" merge "$T/ties.yml" --out "$T/bad" --quiet >"$T/o" 2>"$T/e"
check "bad shard: non-zero exit" '[ $? -ne 0 ]'
check "bad shard: message names the file" 'grep -q "m1" "$T/e"'
check "bad shard: no output written" '[ ! -e "$T/bad" ] && [ -z "$(ls -d "$T"/bad.tmp* 2>/dev/null)" ]'

[ $fail -eq 0 ] && rm -rf "$T"
exit $fail
