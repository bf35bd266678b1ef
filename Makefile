# evidx — see README.md. `make demo` and `make test` are the two set-up commands.
GO      ?= go
BIN     := bin/evidx
export CGO_ENABLED := 1

.PHONY: all build test test-short deps demo bench fuzz clean

all: build

build:
	$(GO) build -buildvcs=true -o $(BIN) ./cmd/evidx

deps:
	@bash scripts/deps.sh

# test: vet, then every package with the race detector (the parsers and the
# concurrent pipeline alike), then each fuzz target for 3 s (make fuzz: 60 s).
test: deps build
	$(GO) vet ./...
	$(GO) test -race -timeout 15m ./...
	@bash scripts/fuzz-smoke.sh 3s

demo: deps build
	@bash scripts/demo.sh

bench: deps build
	@bash scripts/bench.sh

fuzz: deps
	@bash scripts/fuzz-smoke.sh 60s

clean:
	rm -rf bin
