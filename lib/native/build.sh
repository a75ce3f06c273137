#!/bin/sh
# Builds dist/native/forkserver.node, the fork(2) addon behind --start zygote
# and --proxy-protocol, from lib/native/ with the system compiler against the
# headers of the `node` on the PATH: no node-gyp, no download. Run by
# `make native` in a checkout, and by npm when the package is installed (its
# "install" script), for the Node that installs it; by hand, from any folder,
# to build it again: sh /path/to/forkserver/lib/native/build.sh
#
# It writes down what happened, for `make` and for the server to read:
# dist/native/build.log, the compiler's output; dist/native/build.state, one
# line: the Node it built for (its version and NODE_MODULE_VERSION, the ABI
# the addon fits) and the outcome, one of built, no-compiler, no-headers,
# failed. It is optional: without a compiler, or when the compile fails, it
# says so in one line and exits 0, and all but the addon's features work.
# With FORKSERVER_REQUIRE_ADDON=1 (CI, where a compiler is there) it exits 1.
cd "$(dirname "$0")/../.." || exit 1
CC=${CC:-cc}
CXX=${CXX:-c++}
out=dist/native
mkdir -p "$out"
rm -f "$out/forkserver.node" "$out/build.state"
abi=$(node -p 'process.version + " " + process.versions.modules') || {
  echo "forkserver: no node on the PATH to build the native addon for"
  exit 1
}
version=${abi% *}
include=$(node -p "require('path').resolve(process.execPath, '../../include/node')")
log="$(pwd)/$out/build.log"
# Every lib/native/*.c (one file per concern, native.h between them) and park.cc, linked as one.
# park.cc includes V8's headers, which from Node 24 on need C++20 (Node 20's and 22's take it too).
compile() {
  set --
  for source in lib/native/*.c; do
    object="$out/$(basename "$source" .c).o"
    "$CC" -O2 -fPIC -Wall -I"$include" -c "$source" -o "$object" || return 1
    set -- "$@" "$object"
  done
  "$CXX" -O2 -fPIC -Wall -std=c++20 -I"$include" -c lib/native/park.cc -o "$out/park.o" &&
  "$CXX" -shared -o "$out/forkserver.node.tmp" "$@" "$out/park.o" &&
  mv "$out/forkserver.node.tmp" "$out/forkserver.node"
}
# The outcome, written down, and said in one line when the addon was not built.
outcome() {
  echo "$abi $1" >"$out/build.state"
  [ "$1" = built ] && exit 0
  echo "forkserver: $2: --start zygote and --proxy-protocol are unavailable (see $log)"
  [ "${FORKSERVER_REQUIRE_ADDON:-}" = 1 ] || exit 0
  echo "forkserver: FORKSERVER_REQUIRE_ADDON=1: the native addon must build" >&2
  cat "$log" >&2
  exit 1
}
echo "building for Node $version (NODE_MODULE_VERSION ${abi#* }) with CC=$CC CXX=$CXX against $include" >"$log"
if ! command -v "$CC" >/dev/null || ! command -v "$CXX" >/dev/null; then
  echo "no C compiler: CC=$CC or CXX=$CXX is not on the PATH" >>"$log"
  outcome no-compiler "no C compiler ($CC and $CXX)"
elif [ ! -f "$include/node.h" ]; then
  echo "no node.h in $include" >>"$log"
  outcome no-headers "no headers for Node $version (no $include/node.h)"
elif ! compile >>"$log" 2>&1; then
  outcome failed "the native addon did not compile for Node $version"
else
  outcome built
fi
