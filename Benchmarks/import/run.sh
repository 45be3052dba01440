#!/usr/bin/env bash
# Lead import vs a raw `psql \copy` of the same file into an unindexed table (target: <= 2x).
# Usage: Benchmarks/import/run.sh [ROWS]   (default 1,000,000)
# Prints wall times, rows/s and the CPU seconds of the server and of PostgreSQL (results.md).
# Builds ctower in release into .build-bench/, generates the file once into $TMPDIR, and runs
# `ctower bench import`, which starts a throw-away embedded PostgreSQL, imports the file through
# LeadService.ImportLeads (auth interceptor, handler, COPY, set-based merge), then times psql.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rows=${1:-1000000}
file=${TMPDIR:-/tmp}/ctower-bench-leads-$rows.csv
cd "$root"
swift build -c release --scratch-path .build-bench --product ctower >/dev/null
[[ -f "$file" ]] || python3 Benchmarks/import/generate.py "$rows" "$file"
"$(swift build -c release --scratch-path .build-bench --show-bin-path)/ctower" bench import "$file"
