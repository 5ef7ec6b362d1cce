# tests/mpi/lib.sh — the set-up every MPI CLI test shares. Source it with the
# test's name and its own arguments (the graft-mpi and graft binaries):
#   . "$(dirname "$0")/lib.sh" mpi_cli_NAME "$@"
# It sets GM and G (the binaries), RUN (mpirun on 2 ranks), T (a fresh
# scratch directory), PY and CMP (tests/mpi/st_compare.py), fail=0 and
# check NAME CONDITION (prints ok/FAIL, sets fail=1 on failure) and
# kill_rank JOB VICTIM.
GM=$2
G=$3
RUN=${GRAFT_MPIRUN:-mpirun -np 2 --oversubscribe --allow-run-as-root}
T=${GRAFT_TMP:-/tmp}/$1.$$
PY=/usr/bin/python3
CMP="$PY ${GRAFT_SRC:-.}/tests/mpi/st_compare.py"
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
# kill_rank JOB VICTIM: SIGKILLs the rank VICTIM (if any) of the mpirun
# background job JOB and waits for the job (killed after 60 s at the latest);
# sets rc to its exit status and secs to the seconds it took to end.
kill_rank() {
  local t0 guard
  t0=$(date +%s)
  [ -n "$2" ] && kill -9 "$2"
  ( sleep 60; kill -9 "$1" 2>/dev/null ) & guard=$!
  wait "$1"; rc=$?
  secs=$(($(date +%s) - t0))
  kill $guard 2>/dev/null; wait $guard 2>/dev/null
}
