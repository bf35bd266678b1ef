# evidx — see README.md. `make demo` and `make test` are the two set-up commands.
GO      ?= go
BIN     := bin/evidx
export CGO_ENABLED := 1

.PHONY: all build beam test test-beam test-short deps demo bench fuzz clean

all: build

build:
	$(GO) build -buildvcs=true -o $(BIN) ./cmd/evidx

# beam: the dataset path as an Apache Beam pipeline, a module of its own
# (beam/go.mod) so its dependencies stay out of the core's.
beam:
	cd beam && $(GO) build -buildvcs=true -o ../bin/evidx-beam ./cmd/evidx-beam

deps:
	@bash scripts/deps.sh

# test: vet, then every package with the race detector (the parsers and the
# concurrent pipeline alike), then each fuzz target for 1 s (make fuzz: 10 minutes each).
test: deps build
	$(GO) vet ./...
	$(GO) test -race -timeout 15m ./...
	@bash scripts/fuzz-smoke.sh 1s
	$(MAKE) test-beam

# test-beam: the Beam module's tests, on the in-process Prism runner.
test-beam:
	cd beam && $(GO) vet ./... && $(GO) test -timeout 10m ./...

demo: deps build
	@bash scripts/demo.sh

bench: deps build
	@bash scripts/bench.sh

# fuzz: every parser's target for FUZZTIME (10 minutes each, about 10 hours
# for all; FUZZ=regexp picks targets by package path or name).
FUZZTIME ?= 10m
FUZZ     ?=
fuzz: deps
	@bash scripts/fuzz-smoke.sh $(FUZZTIME) '$(FUZZ)'

clean:
	rm -rf bin
