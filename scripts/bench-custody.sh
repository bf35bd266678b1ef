#!/usr/bin/env bash
# bench-custody.sh: catalog rows/s for file records (as the walker writes
# them), content-store MB/s, and audit appends/s (each fsynced).
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench . -benchtime 2s ./custody/
