#!/usr/bin/env bash
# Benchmarks/rpc/profile.sh — where Control Tower's CPU goes per echo request (see profile.md).
#
#   Benchmarks/rpc/profile.sh [US_PER_REQ]
#
# Starts the release ctower-interop-server pinned to CPU 0, drives it with the run.sh load from
# CPU 1, and while the load runs:
#   1. `perf record -e cpu-clock --call-graph dwarf` of the server -> phase / leaf-category tables
#      (perf_breakdown.py) and the top self-time symbols;
#   2. if uprobes work (`perf probe`), counts malloc/free/swift_allocObject/swift_retain/
#      swift_release/swift_task_create per request on a short, slowed-down run, and syscalls and
#      context switches per request on a full-speed run.
# US_PER_REQ (server CPU µs/request from run.sh) turns shares into µs. PROFILE_DIR keeps perf.data.
# Needs: perf (linux-perf), h2load, valgrind is NOT used (valgrind 3.19 cannot read Swift 6.3's DWARF 5).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
us=${1:-}
out=${PROFILE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ctower-rpc-profile.XXXXXX")}
mkdir -p "$out"
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }

(cd "$repo" && swift build -c release --scratch-path .build-bench --product ctower-interop-server) >&2
bin="$(cd "$repo" && swift build -c release --scratch-path .build-bench --show-bin-path)/ctower-interop-server"

printf '\x00\x00\x00\x00\x07\x0a\x05hello' >"$out/req.bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$bin" --listen "127.0.0.1:$port" >"$out/server.out" 2>&1 &
pid=$!
probes=()
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local p
  for p in "${probes[@]}"; do perf probe -q -d "$p" 2>/dev/null || true; done
  [[ -n ${PROFILE_DIR:-} ]] || rm -rf "$out"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q listening "$out/server.out" 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port/ctower.testing.v1.Echo/Say"
load() {
  taskset -c 1 h2load -n "$1" -c 4 -m 64 -t 1 -d "$out/req.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "$url"
}
load 20000 >/dev/null

echo "## perf record (cpu-clock, DWARF call graphs) during 'h2load -n 300000'" >&2
perf record -q -F 1999 -e cpu-clock --call-graph dwarf,32768 -p "$pid" -o "$out/perf.data" -- sleep 2.5 2>/dev/null &
rec=$!
sleep 0.2
load 300000 | grep -E '^finished'
wait "$rec" || true
perf script -i "$out/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null | swift demangle --simplified \
  | python3 "$here/perf_breakdown.py" ${us:+"$us"} || true
echo "top self-time symbols:"
perf report -i "$out/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' \
  | swift demangle --simplified | cut -c1-150 | head -30 || true
echo

echo "## events per request"
swift_lib=$(dirname "$(grep -m1 -o '/[^ ]*libswiftCore.so' "/proc/$pid/maps")")
libc=$(grep -m1 -o '/[^ ]*libc.so.6' "/proc/$pid/maps")
if perf probe -q -x "$libc" malloc 2>/dev/null; then
  probes+=("probe_libc:malloc")
  perf probe -q -x "$libc" free && probes+=("probe_libc:free")
  for f in swift_allocObject swift_retain swift_release; do
    perf probe -q -x "$swift_lib/libswiftCore.so" "$f" && probes+=("probe_libswiftCore:$f")
  done
  perf probe -q -x "$swift_lib/libswift_Concurrency.so" swift_task_create && probes+=("probe_libswift_Concurrency:swift_task_create")
  n=10000
  events=$(IFS=,; echo "${probes[*]}")
  perf stat -x, -e "$events" -p "$pid" -o "$out/probes.csv" -- bash -c "$(declare -f load); out=$out url=$url load $n" >/dev/null
  awk -F, -v n=$n '$1 ~ /^[0-9]+$/ {printf "%-45s %8.1f per request\n", $3, $1/n}' "$out/probes.csv"
else
  echo "(uprobes unavailable: skipping allocation counts)"
fi
n=200000
perf stat -x, -e 'raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,context-switches' -p "$pid" \
  -o "$out/syscalls.csv" -- bash -c "$(declare -f load); out=$out url=$url load $n" >/dev/null 2>&1 || true
awk -F, -v n=$n '$1 ~ /^[0-9]+$/ {printf "%-45s %8.3f per request\n", $3, $1/n}' "$out/syscalls.csv"
[[ -n ${PROFILE_DIR:-} ]] && echo "perf data kept in $out"
