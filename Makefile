# flowscan build and test entry points. `make run` and `make test` are the
# two commands the README promises to keep working.
GO       ?= go
BIN      ?= ./flowscan
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X github.com/flowscan/flowscan/internal/cli.Version=$(VERSION)
FUZZTIME ?= 20s

.PHONY: all deps build run test vet fmt-check bench fuzz race clean

all: build

# deps: the C library the build links (librrd, through cgo) and the rrdtool
# command; installed with apt-get when missing (sudo when not root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@pkg-config --exists librrd 2>/dev/null || { \
	  echo "installing librrd-dev, rrdtool and pkg-config (needed to build flowscan)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends librrd-dev rrdtool pkg-config gcc; }

build: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/flowscan

# run: the main job on defaults: a week of generated history scanned into RRD
# files, then a live collector on loopback fed by the built-in generator, the
# scanner and the dashboard on http://127.0.0.1:8080/ until Ctrl-C, which
# prints what was stored.
run: build
	$(BIN) demo --backfill 168h --interval 5m --listen 127.0.0.1:8080

# test: the whole suite. Integration tests that need Debian packages
# (softflowd, tshark) skip with a message when those are missing; .ci/run
# installs them.
test: deps fmt-check vet
	$(GO) test -count=1 ./...

vet: deps
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

race:
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# fuzz: run every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -f $(BIN)
	rm -rf flowscan-demo
