#!/usr/bin/env bash
# Benchmarks/rpc/run.sh — unary gRPC echo: Control Tower vs gRPC C++ 1.51 vs nghttpd (HTTP/2 ceiling).
#
#   Benchmarks/rpc/run.sh            # build everything, measure, print the table, write results.md
#
# Method (same as /work/shared/reference/performance-anchors.md):
#   each server pinned with `taskset -c 0` (one core), load from
#   `taskset -c 1 h2load -n 200000 -c 4 -m 64 -t 1 -d req.bin -H 'content-type: application/grpc' -H 'te: trailers' URL`
#   after a warm-up (N/10 requests), 3 runs per server interleaved round-robin, median reported.
#   Server CPU µs/request = delta of utime+stime in /proc/PID/stat (all threads) / requests.
#
# Environment knobs (defaults in brackets): N [200000] C [4] M [64] RUNS [3]
#   SERVER_CPU [0] LOAD_CPU [1] CPP_ASYNC [1: also measure the C++ async API]
#   CPP_BUILD_DIR [a fresh temp dir; set it to reuse a previous C++ build]
#   RESULTS [Benchmarks/rpc/results.md] SKIP_SWIFT_BUILD [0]
#
# Needs (Debian 12): apt-get install -y nghttp2-client nghttp2-server libgrpc++-dev protobuf-compiler-grpc g++ pkg-config
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
N=${N:-200000} C=${C:-4} M=${M:-64} RUNS=${RUNS:-3}
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1} CPP_ASYNC=${CPP_ASYNC:-1}
RESULTS=${RESULTS:-$here/results.md}
WARMUP=$((N / 10))

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

missing=()
for tool in h2load nghttpd nghttp taskset g++ pkg-config protoc grpc_cpp_plugin swift python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
pkg-config --exists grpc++ protobuf 2>/dev/null || missing+=("pkg-config:grpc++,protobuf")
((${#missing[@]} == 0)) || die "missing: ${missing[*]}
  apt-get install -y nghttp2-client nghttp2-server libgrpc++-dev protobuf-compiler-grpc g++ pkg-config"
(($(nproc) >= 2)) || die "needs 2 CPUs (server on CPU $SERVER_CPU, load on CPU $LOAD_CPU)"

work=$(mktemp -d "${TMPDIR:-/tmp}/ctower-rpc-bench.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
# (a) our server, release, in its own scratch path
swift_build=(swift build -c release --scratch-path .build-bench --product ctower-interop-server)
if [[ ${SKIP_SWIFT_BUILD:-0} != 1 ]]; then
  say "building ctower-interop-server: ${swift_build[*]}"
  (cd "$repo" && "${swift_build[@]}") >&2
fi
ours_bin="$(cd "$repo" && swift build -c release --scratch-path .build-bench --show-bin-path)/ctower-interop-server"
[[ -x $ours_bin ]] || die "no $ours_bin"

# (b) the C++ baseline, built outside the repo
cpp_dir=${CPP_BUILD_DIR:-$work/cpp}
mkdir -p "$cpp_dir"
cpp_bin=$cpp_dir/echo_server
cpp_src=$here/cpp/echo_server.cc
proto=$repo/proto/ctower/testing/v1/echo.proto
cpp_cmd="g++ -O2 -std=c++17 -I$cpp_dir $cpp_src $cpp_dir/ctower/testing/v1/echo.pb.cc $cpp_dir/ctower/testing/v1/echo.grpc.pb.cc -o $cpp_bin $(pkg-config --cflags --libs grpc++ protobuf)"
if [[ ! -x $cpp_bin || $cpp_src -nt $cpp_bin || $proto -nt $cpp_bin ]]; then
  say "building the C++ echo server in $cpp_dir (gRPC C++ $(pkg-config --modversion grpc++))"
  protoc -I "$repo/proto" --cpp_out="$cpp_dir" --grpc_out="$cpp_dir" \
    --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" ctower/testing/v1/echo.proto
  $cpp_cmd
fi

# ---------------------------------------------------------------- inputs
# EchoRequest{text:"hello"} = 0a 05 "hello"; gRPC frame = 00 (not compressed) + be32 length 7.
printf '\x00\x00\x00\x00\x07\x0a\x05hello' >"$work/req.bin"
mkdir -p "$work/docroot"
printf 'hello world\n' >"$work/docroot/echo" # 12 bytes
[[ $(stat -c %s "$work/docroot/echo") == 12 ]] || die "static file is not 12 bytes"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME CMD... : starts a server pinned to SERVER_CPU, waits for its port, sets ${NAME}_pid/_port
declare -A pid_of port_of url_of cmd_of
start_server() {
  local name=$1 port=$2 path=$3; shift 3
  taskset -c "$SERVER_CPU" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  local i up=0
  for i in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then cat "$work/$name.err" >&2; die "$name exited"; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    sleep 0.1
  done
  ((up)) || die "$name did not listen on $port within 20 s"
  pid_of[$name]=$pid port_of[$name]=$port url_of[$name]="http://127.0.0.1:$port$path"
  cmd_of[$name]="taskset -c $SERVER_CPU $*"
  say "$name: pid $pid, $(grep -m1 . "$work/$name.out" 2>/dev/null || echo "port $port")"
}

servers=(nghttpd cpp-callback)
((CPP_ASYNC)) && servers+=(cpp-async)
servers+=(ours)

p=$(free_port); start_server nghttpd "$p" /echo nghttpd --no-tls -d "$work/docroot" "$p"
p=$(free_port); start_server cpp-callback "$p" /ctower.testing.v1.Echo/Say "$cpp_bin" "$p" callback
if ((CPP_ASYNC)); then
  p=$(free_port); start_server cpp-async "$p" /ctower.testing.v1.Echo/Say "$cpp_bin" "$p" async
fi
p=$(free_port); start_server ours "$p" /ctower.testing.v1.Echo/Say "$ours_bin" --listen "127.0.0.1:$p"

# ---------------------------------------------------------------- correctness
# h2load only counts HTTP 2xx; check grpc-status and the echoed body once per gRPC server.
# The EchoResponse for "hello" has the same bytes as the EchoRequest, so the body must equal req.bin.
for name in "${servers[@]}"; do
  [[ $name == nghttpd ]] && continue
  check=(nghttp -v -H 'content-type: application/grpc' -H 'te: trailers' -d "$work/req.bin" "${url_of[$name]}")
  "${check[@]}" >"$work/$name.trace" 2>&1 || { cat -v "$work/$name.trace" >&2; die "$name: nghttp failed"; }
  grep -aq 'grpc-status: 0$' "$work/$name.trace" || { cat -v "$work/$name.trace" >&2; die "$name: no grpc-status 0"; }
  nghttp -H 'content-type: application/grpc' -H 'te: trailers' -d "$work/req.bin" "${url_of[$name]}" >"$work/$name.body"
  cmp -s "$work/req.bin" "$work/$name.body" || die "$name: response body is not the framed EchoResponse{text:\"hello\"}"
  say "$name: grpc-status 0, body ok"
done
nghttp_check_cmd="nghttp -v -H 'content-type: application/grpc' -H 'te: trailers' -d req.bin URL   # expect 'grpc-status: 0' and a body equal to req.bin"

# ---------------------------------------------------------------- measure
hz=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
load_cmd() {
  echo taskset -c "$LOAD_CPU" h2load -n "$1" -c "$C" -m "$M" -t 1 -d "$work/req.bin" \
    -H "'content-type: application/grpc'" -H "'te: trailers'" "$2"
}
h2() {
  taskset -c "$LOAD_CPU" h2load -n "$1" -c "$C" -m "$M" -t 1 -d "$work/req.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "$2"
}
# mean latency from h2load's "time for request:" line, in µs
to_us() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) f=1; else if (v ~ /ms$/) f=1000; else f=1e6; sub(/[a-z]+$/,"",v); printf "%.0f", v*f }'; }

declare -A rps cpu lat
raw=()
for name in "${servers[@]}"; do
  say "warm-up $name ($WARMUP requests)"
  h2 "$WARMUP" "${url_of[$name]}" >/dev/null 2>&1 || true
done
for run in $(seq "$RUNS"); do
  for name in "${servers[@]}"; do
    pid=${pid_of[$name]}
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(ticks "$pid")
    out=$(h2 "$N" "${url_of[$name]}" 2>&1) || true
    t1=$(ticks "$pid")
    ok=$(awk '/^requests:/{print $8}' <<<"$out")
    r=$(awk '/^finished in/{print $4}' <<<"$out")
    mean=$(awk '/^time for request:/{print $6}' <<<"$out")
    [[ $ok == "$N" ]] || { printf '%s\n' "$out" >&2; die "$name run $run: only ${ok:-0}/$N succeeded"; }
    c=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$N" 'BEGIN{printf "%.2f", d/hz*1e6/n}')
    l=$(to_us "$mean")
    rps[$name]+="$r " cpu[$name]+="$c " lat[$name]+="$l "
    raw+=("| $run | $name | $r | $l | $c | $load_before |")
    say "run $run $name: $r req/s, mean ${l} µs, server CPU $c µs/req (loadavg $load_before)"
  done
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
declare -A med_rps med_cpu med_lat
for name in "${servers[@]}"; do
  med_rps[$name]=$(median "${rps[$name]}")
  med_cpu[$name]=$(median "${cpu[$name]}")
  med_lat[$name]=$(median "${lat[$name]}")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }

label() {
  case $1 in
    nghttpd) echo "nghttpd $(nghttpd --version | awk '{print $2}'), 12-byte static file (HTTP/2 ceiling, not gRPC)" ;;
    cpp-callback) echo "gRPC C++ $(pkg-config --modversion grpc++) callback API" ;;
    cpp-async) echo "gRPC C++ $(pkg-config --modversion grpc++) async API (1 completion queue)" ;;
    ours) echo "Control Tower (TowerRPC, release)" ;;
  esac
}
table() {
  echo "| server | req/s | mean latency µs | server CPU µs/req | ours/this CPU µs | ours/this req/s |"
  echo "|---|---:|---:|---:|---:|---:|"
  local name
  for name in "${servers[@]}"; do
    printf '| %s | %.0f | %s | %s | %s | %s |\n' "$(label "$name")" "${med_rps[$name]}" "${med_lat[$name]}" \
      "${med_cpu[$name]}" "$(ratio "${med_cpu[ours]}" "${med_cpu[$name]}")" "$(ratio "${med_rps[ours]}" "${med_rps[$name]}")"
  done
}

echo
echo "median of $RUNS runs, $N requests each, h2load -c $C -m $M, server on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
table
echo
echo "ours/C++ callback: CPU µs/req $(ratio "${med_cpu[ours]}" "${med_cpu[cpp-callback]}")x (lower is better), req/s $(ratio "${med_rps[ours]}" "${med_rps[cpp-callback]}")x (higher is better)"

# ---------------------------------------------------------------- results.md
{
  echo "# RPC benchmark results"
  echo
  echo "Generated by \`Benchmarks/rpc/run.sh\` — re-running it overwrites this file. How to read it: \`Benchmarks/README.md\`."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && dirty=$(git status --porcelain -- Sources Package.swift 2>/dev/null | awk '{print $2}' | cut -d/ -f1-2 | sort -u | paste -sd' ') && [[ -n $dirty ]] && echo " (working tree also had uncommitted changes in: $dirty)")"
  echo "- machine: $(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print $2}'), $(nproc) vCPU, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
  echo "- toolchain: $(swift --version 2>&1 | head -1); g++ $(g++ -dumpfullversion); gRPC C++ $(pkg-config --modversion grpc++); protobuf $(pkg-config --modversion protobuf); $(h2load --version | head -1)"
  echo "- load average at start of the measurement: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; see Noise)"
  echo
  echo "## Results (median of $RUNS runs, $N requests each)"
  echo
  table
  echo
  echo "**ours / gRPC C++ callback: CPU µs per request $(ratio "${med_cpu[ours]}" "${med_cpu[cpp-callback]}")x (lower is better), req/s $(ratio "${med_rps[ours]}" "${med_rps[cpp-callback]}")x (higher is better).**"
  echo "ours / nghttpd: CPU µs per request $(ratio "${med_cpu[ours]}" "${med_cpu[nghttpd]}")x, req/s $(ratio "${med_rps[ours]}" "${med_rps[nghttpd]}")x."
  echo
  echo "## All runs"
  echo
  echo "| run | server | req/s | mean latency µs | server CPU µs/req | 1-min loadavg before |"
  echo "|---:|---|---:|---:|---:|---:|"
  printf '%s\n' "${raw[@]}"
  echo
  echo "## Exact commands"
  echo
  echo '```sh'
  echo "# build (from the repository root)"
  echo "${swift_build[*]}"
  echo "protoc -I proto --cpp_out=BUILD --grpc_out=BUILD --plugin=protoc-gen-grpc=\$(command -v grpc_cpp_plugin) ctower/testing/v1/echo.proto"
  echo "g++ -O2 -std=c++17 -IBUILD Benchmarks/rpc/cpp/echo_server.cc BUILD/ctower/testing/v1/echo.pb.cc BUILD/ctower/testing/v1/echo.grpc.pb.cc -o BUILD/echo_server \$(pkg-config --cflags --libs grpc++ protobuf)"
  echo "# request body: gRPC frame of EchoRequest{text:\"hello\"} (12 bytes)"
  echo "printf '\\x00\\x00\\x00\\x00\\x07\\x0a\\x05hello' > req.bin"
  echo "# servers, each pinned to CPU $SERVER_CPU"
  for name in "${servers[@]}"; do echo "${cmd_of[$name]//$work/\$WORK}" | sed "s#$repo/##g"; done
  echo "# correctness check before the load (h2load only counts HTTP 2xx)"
  echo "$nghttp_check_cmd"
  echo "# load: warm-up with -n $WARMUP, then $RUNS measured runs per server (interleaved)"
  load_cmd "$N" URL | sed "s#$work/##g"
  echo "# server CPU: utime+stime (fields 14+15) of /proc/PID/stat before and after each run; (delta / CLK_TCK) / requests"
  echo '```'
  echo
  echo "URLs: gRPC servers \`http://127.0.0.1:PORT/ctower.testing.v1.Echo/Say\`; nghttpd \`http://127.0.0.1:PORT/echo\` (a 12-byte file, requested"
  echo "with the same POST, body and headers as the gRPC runs; nghttpd discards the body)."
  echo
  echo "## Noise"
  echo
  echo "Other engineers compile on this machine while the benchmark runs (see the load average per run above)."
  echo "req/s and latency depend on whether CPU $SERVER_CPU / $LOAD_CPU were free during the run; CPU µs/request"
  echo "(CPU time charged to the server process itself) is the robust figure. Runs are interleaved across"
  echo "servers so a burst of outside load does not hit only one of them. Treat ±10 % on req/s as noise."
  echo
  echo "For comparison, the workplace anchors (/work/shared/reference/performance-anchors.md, same method,"
  echo "a machine of the same kind) list nghttpd at 1.55 µs and gRPC C++ callback at 9.65 µs CPU per request."
  echo "Absolute figures move with the VM and its neighbours; compare servers within one run (the ratios)."
} >"$RESULTS"
say "wrote ${RESULTS#$repo/}"
