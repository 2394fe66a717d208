# socketpipe: build, test, demo, bench.
GO      ?= go
PREFIX  ?= /usr/local
BIN     := bin/socketpipe
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w
# How long each fuzz target runs in `make test` (seed corpora always run as unit tests).
FUZZTIME ?= 5s
FUZZ_TARGETS := \
	./pkg/plumb:FuzzParseArgs \
	./pkg/rendezvous:FuzzControl \
	./pkg/rendezvous:FuzzOpenReader \
	./pkg/sshlogin:FuzzWatcher

.PHONY: all build build-all test unit race integration fuzz demo bench install clean

all: build

# Static (no cgo), so that the binary socketpipe copies to a remote host runs there whatever
# its C library.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/socketpipe

# Cross-compiled binaries for placing on remote hosts by hand.
build-all:
	@for t in linux/amd64 linux/arm64 linux/arm linux/386 linux/riscv64 linux/ppc64le linux/s390x; do \
		os=$${t%/*}; arch=$${t#*/}; \
		echo "build bin/socketpipe-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o bin/socketpipe-$$os-$$arch ./cmd/socketpipe || exit 1; \
	done

test: unit race integration fuzz

unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./pkg/... ./cmd/...

race:
	$(GO) test -race -count=1 ./pkg/... ./cmd/...

integration:
	$(GO) test -count=1 -timeout 30m ./integration/...

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/socketpipe
	install -m 644 socketpipe.1 $(DESTDIR)$(PREFIX)/share/man/man1/socketpipe.1

clean:
	rm -rf bin
	$(GO) clean -testcache
