#!/bin/sh
# Builds dist/native/forkserver.node, the fork(2) addon behind --start zygote,
# from lib/native/ with the system compiler against the running Node's own
# headers: no node-gyp, no download. Run from the package's root: by
# `make native` in a checkout, and by npm when the package is installed (its
# "install" script), for the Node that installs it. It is optional: without
# a compiler, or when the compile fails, it says so in one line and exits 0,
# and everything but --start zygote works.
CC=${CC:-cc}
CXX=${CXX:-c++}
out=dist/native
include=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
mkdir -p "$out"
rm -f "$out/forkserver.node"
# Every lib/native/*.c (one file per concern, native.h between them) and park.cc, linked as one.
compile() {
  set --
  for source in lib/native/*.c; do
    object="$out/$(basename "$source" .c).o"
    "$CC" -O2 -fPIC -Wall -I"$include" -c "$source" -o "$object" || return 1
    set -- "$@" "$object"
  done
  "$CXX" -O2 -fPIC -Wall -std=c++17 -I"$include" -c lib/native/park.cc -o "$out/park.o" &&
  "$CXX" -shared -o "$out/forkserver.node.tmp" "$@" "$out/park.o" &&
  mv "$out/forkserver.node.tmp" "$out/forkserver.node"
}
if ! command -v "$CC" >/dev/null || ! command -v "$CXX" >/dev/null; then
  echo "forkserver: no C compiler: --start zygote is unavailable"
elif ! compile >"$out/build.log" 2>&1; then
  echo "forkserver: the native addon did not compile ($out/build.log): --start zygote is unavailable"
fi
