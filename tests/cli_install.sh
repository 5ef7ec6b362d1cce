#!/usr/bin/env bash
# `make install` layout: installs into a scratch prefix, then builds a small
# program against the installed headers and library through pkg-config
# (the .pc file is relocatable) and checks its output.
set -euo pipefail
build=$(dirname "$1")
prefix="${GRAFT_TMP:-/tmp}/install-test"
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/graft"
test -f "$prefix/include/graft/graft.h"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# a sanitizer build's library needs the sanitizer runtime at link time
san=""
if nm "$prefix/lib/libgraft.a" 2>/dev/null | grep "__asan_" >/dev/null; then san="-fsanitize=address,undefined"; fi
cc -std=c11 $san "$GRAFT_SRC/tests/install/use_graft.c" $(pkg-config --cflags --libs --static graft) -o "$prefix/use_graft"
out=$("$prefix/use_graft")
echo "$out"
[ "$out" = "loss 54 grad 7 11 9 13" ]
"$prefix/bin/graft" --version
echo "install ok"
