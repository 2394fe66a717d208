# socketpipe: build, test, demo, bench.
# go on PATH, else Go's own install directory: sudo's secure_path leaves /usr/local/go/bin out.
GO      ?= $(or $(shell command -v go 2>/dev/null),$(wildcard /usr/local/go/bin/go),go)
PREFIX  ?= /usr/local
BIN     := bin/socketpipe
# Where make install puts the build-all set (bin/socketpipe-GOOS-GOARCH of every TARGETS),
# from which self-deploy uploads the binary for a remote host of another target.
LIBDIR  = $(PREFIX)/lib/socketpipe
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/socketpipe/socketpipe/internal/version.stamp=$(VERSION)
# Every package but the end-to-end tests (./integration/...) and their harness
# (./internal/harness/..., which starts sshd and namespaces), which `make integration` runs.
UNIT_PKGS = $$($(GO) list ./... | grep -v -e '/integration' -e '/internal/harness')
# How long each fuzz target runs in `make test` (seed corpora always run as unit tests).
# Counted in executions, not seconds: go1.26's fuzzing coordinator can report a spurious
# "context deadline exceeded" when a -fuzztime duration ends mid-execution (golang/go#75804,
# fixed in go1.27). Each target gets FUZZTIME executions, scaled by the factor beside it.
FUZZTIME ?= 100000
# make bench: bytes per transfer and interleaved rounds (see integration/bench). spbench also
# reads BENCH_TREE_SIZE (the tar workloads' tree, default half of BENCH_SIZE), BENCH_RR_ROUNDS
# (timed request/response round trips, default 2000), BENCH_COMPRESSOR (the three-stage
# example's remote compressor, default zstd -1), BENCH_ONLY (a regular expression of variant
# keys) and BENCH_ALT (another socketpipe binary to run beside this one, for before/after).
# After the loopback tables, the WAN table between two namespaces (README, Performance):
# BENCH_WAN (1; 0 leaves it out, only runs it alone), BENCH_WAN_SIZE (bytes per transfer,
# default per round trip) and BENCH_WAN_RUNS (default 1); BENCH_ONLY matches its cells too.
BENCH_SIZE ?= 1GiB
BENCH_RUNS ?= 7
# make bench: the Go micro-benchmarks (brace parser, relay copy, -e framing).
BENCH_PKGS ?= ./pkg/... ./internal/...
# Every system and architecture both halves build and run on (make build-all, make cross; make
# install and make dist ship them).
TARGETS := linux/amd64 linux/arm64 linux/arm linux/386 linux/riscv64 \
	freebsd/amd64 freebsd/arm64 darwin/amd64 darwin/arm64 openbsd/amd64 netbsd/amd64
# The end-to-end transfers make portable runs with a binary built -tags portable.
PORTABLE_TESTS := ^(TestManualExamples|TestEncrypt64MiB|TestSSHModeTar|TestSSHModeStats)$$
# package:target:divisor (a slow target runs FUZZTIME/divisor executions).
FUZZ_TARGETS := \
	./pkg/plumb:FuzzParseArgs:1 \
	./internal/wire:FuzzControl:1 \
	./internal/seal:FuzzOpenReader:10 \
	./internal/stripe:FuzzReader:1 \
	./pkg/sshconfig:FuzzParseArgs:1 \
	./pkg/sshconfig:FuzzResolve:100 \
	./pkg/deploy:FuzzWatcher:10 \
	./pkg/sshlogin:FuzzForcedLogins:1

.PHONY: all build build-all cross portable deps test unit race integration fuzz demo bench install dist clean

all: build

# Static (no cgo): it starts faster (two processes start per run, one on each host), and the
# same binary runs on any Linux of its architecture, which self-deploy relies on. Name
# resolution is Go's own (/etc/hosts and DNS); see socketpipe(1), BUGS.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/socketpipe

# Cross-compiled binaries of every target both halves run on, for placing on remote hosts.
build-all:
	@for t in $(TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; \
		echo "build bin/socketpipe-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o bin/socketpipe-$$os-$$arch ./cmd/socketpipe || exit 1; \
	done

# Every package, tests included, compiles and vets clean for every target: one go build and one
# go vet per system and architecture, sharing the build cache (a Linux-only change cannot land).
cross:
	@for t in $(TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; \
		echo "build and vet $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build ./... || exit 1; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) vet ./... || exit 1; \
	done

# The path the BSDs and macOS take (no splice, pipe sizing, Linux TCP_INFO, POLLRDHUP or
# Pdeathsig), run on Linux: the library's unit tests built -tags portable, and a few end-to-end
# transfers (plain, -e, ssh mode, --stats) with a socketpipe binary built the same way.
portable: deps
	$(GO) test -count=1 -tags portable ./pkg/...
	SOCKETPIPE_TEST_BUILDFLAGS=-tags=portable $(GO) test -count=1 -run '$(PORTABLE_TESTS)' ./integration/

# The Debian packages that the tests, the demo and the benchmarks need are listed in
# .ci/packages. As root, deps installs the missing ones with apt-get; otherwise it prints the
# command that does. With nothing missing it does nothing, quickly, so the targets below run it.
deps:
	@bash .ci/deps

test: deps cross unit race portable integration fuzz

unit:
	$(GO) vet ./...
	$(GO) test -count=1 $(UNIT_PKGS)

race: deps
	$(GO) test -race -count=1 $(UNIT_PKGS)

integration: deps
	$(GO) test -count=1 -timeout 30m ./integration/... ./internal/harness/...

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; div=$${rest##*:}; \
		n=$$(( $(FUZZTIME) / div )); \
		echo "fuzz $$pkg $$name ($${n} executions)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $${n}x $$pkg || exit 1; \
	done

# A throwaway sshd on 127.0.0.1; 1 GiB through socketpipe and through an ssh pipe. Needs root.
demo: deps
	$(GO) run ./integration/bench/cmd/spbench -demo -size 1GiB

# Issue 8's variants and issue 14's workloads interleaved BENCH_RUNS times with the goals
# table, then the Go micro-benchmarks with allocations.
bench: deps
	$(GO) run ./integration/bench/cmd/spbench -size $(BENCH_SIZE) -runs $(BENCH_RUNS)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(BENCH_PKGS)

# The client in PREFIX/bin, its manual, and the build-all set in PREFIX/lib/socketpipe, where
# self-deploy finds the binary for a remote host of another system or architecture (the
# default of --deploy-dir: ../lib/socketpipe beside the executable).
install: build build-all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(LIBDIR)
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/socketpipe
	install -m 644 socketpipe.1 $(DESTDIR)$(PREFIX)/share/man/man1/socketpipe.1
	@for t in $(TARGETS); do \
		f=bin/socketpipe-$${t%/*}-$${t#*/}; \
		echo "install -m 755 $$f $(DESTDIR)$(LIBDIR)/"; \
		install -m 755 $$f $(DESTDIR)$(LIBDIR)/ || exit 1; \
	done

# A release archive per target: dist/socketpipe-VERSION-GOOS-GOARCH.tar.gz holds a directory
# of that name with the target's binary (socketpipe), the manual and the README; dist/SHA256SUMS
# lists their SHA-256 (sha256sum -c --ignore-missing SHA256SUMS checks one).
dist: build-all
	rm -rf dist
	mkdir dist
	@for t in $(TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; name=socketpipe-$(VERSION)-$$os-$$arch; \
		echo "dist dist/$$name.tar.gz"; \
		mkdir dist/$$name && \
		install -m 755 bin/socketpipe-$$os-$$arch dist/$$name/socketpipe && \
		install -m 644 socketpipe.1 README.md dist/$$name/ && \
		tar -C dist --sort=name --owner=0 --group=0 --numeric-owner -cf - $$name | gzip -9n >dist/$$name.tar.gz && \
		rm -r dist/$$name || exit 1; \
	done
	cd dist && sha256sum *.tar.gz >SHA256SUMS

clean:
	rm -rf bin dist
	$(GO) clean -testcache
