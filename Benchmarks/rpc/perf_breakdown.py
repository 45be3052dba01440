#!/usr/bin/env python3
"""Summarise a DWARF-unwound `perf record` of the Control Tower server under the echo load.

    perf script -i perf.data -F comm,tid,ip,sym,dso | swift demangle --simplified | perf_breakdown.py [US_PER_REQ]

Prints two tables: where in the request path the samples fall (phase, decided by the stack) and
what kind of code they are in (leaf category, decided by the innermost frame). With US_PER_REQ
(server CPU µs per request, from run.sh) each share is also given in µs per request.
"""
import re
import sys
from collections import Counter

# Phase markers, checked innermost-first within each group; the first group whose anchor is on the
# stack decides the group, then the first matching sub-marker decides the phase.
GROUPS = [
    ("recv", "nghttp2_session_mem_recv", [
        ("recv: onHeader (2 Strings per header + sessionHeader switch/metadata)", r"expression of onHeader\b|sessionHeader\(streamID:name"),
        ("recv: onBeginHeaders (allocate ServerStream, dictionary insert)", r"onBeginHeaders|sessionBeginHeaders"),
        ("recv: DATA -> MessageDeframer (copies into [UInt8])", r"onDataChunkRecv|sessionData\("),
        ("recv: requestEnded -> startHandler (create Task)", r"requestEnded|startHandler|sessionEndStream"),
        ("recv: HEADERS complete -> startCall (route, ServerContext)", r"sessionHeadersComplete|startCall"),
        ("recv: onStreamClose (ServerStream/Task/Context teardown)", r"onStreamClose|sessionStreamClosed|streamClosed"),
        ("recv: nghttp2 parsing + HPACK decode (own code)", r"."),
    ]),
    ("flush", r"ServerConnectionHandler\.flush\(\)", [
        ("send: stream closed after END_STREAM (ServerStream/Task/Context teardown)", r"onStreamClose|sessionStreamClosed|streamClosed"),
        ("send: write(2) of the coalesced buffer", r"Socket\.write|__GI___libc_write|ChannelHandlerContext\.write"),
        ("send: readOutbound callback (copy DATA, submit trailers)", r"readOutbound"),
        ("send: nghttp2_session_mem_send (framing + HPACK encode) + ByteBuffer append", r"."),
    ]),
    ("task", r"swift_job_run_on_task_executor", [
        ("task: response HEADERS (headers array -> withNameValues -> nghttp2_submit_response)", r"sendHeadersIfNeeded"),
        ("task: finishOnLoop rest (frame + enqueue + trailers array + finish)", r"finishOnLoop"),
        ("task: decode request (protobuf-c unpack -> Swift message)", r"ServerCall\.decode|singleRequest"),
        ("task: encode response (Swift message -> protobuf-c pack -> [UInt8])", r"ServerCall\.encode|protobufBytes"),
        ("task: unary closure + handler body (EchoServiceImpl.say)", r"RPCMethodHandler\.unary|EchoServiceImpl"),
        ("task: Swift concurrency runtime (task switch, executor, task free)", r"."),
    ]),
    ("loop", r"SelectableEventLoop", [
        ("event loop: epoll_wait / socket read / NIO bookkeeping", r"."),
    ]),
]

LEAF = [
    ("malloc/free (glibc)", r"malloc|_int_free|cfree|unlink_chunk|malloc_consolidate|__libc_free|swift_slowAlloc|swift_slowDealloc|realloc|tcache"),
    ("retain/release + object dealloc", r"swift_retain|swift_release|RefCounts|swift_bridgeObject|swift_unownedRetain|swift_unknownObject|swift_dealloc|_swift_release_dealloc|swift_allocObject|deallocating_deinit|\.deinit"),
    ("exclusivity checks (swift_beginAccess/endAccess)", r"swift_beginAccess|swift_endAccess|AccessSet"),
    ("Dictionary + Hasher (SipHash)", r"Hasher|Dictionary|_NativeDictionary|RawDictionaryStorage"),
    ("String creation/compare", r"String|_stringCompare|_allASCII|UTF8|Unicode"),
    ("memcpy/memmove/memcmp", r"memmove|memcpy|memcmp|memset"),
]


def main() -> None:
    us_per_req = float(sys.argv[1]) if len(sys.argv) > 1 else None
    phases, leaves = Counter(), Counter()
    total = 0
    stack = []

    def flush_sample() -> None:
        nonlocal total
        if not stack:
            return
        total += 1
        text = "\n".join(stack)
        phase = "other"
        for _, anchor, subs in GROUPS:
            if re.search(anchor, text):
                for name, pattern in subs:
                    if re.search(pattern, text):
                        phase = name
                        break
                break
        phases[phase] += 1
        leaf_sym, leaf_dso = stack[0].rsplit(" (", 1) if " (" in stack[0] else (stack[0], "")
        category = None
        if "kernel" in leaf_dso:
            category = "kernel"
        elif "libswift_Concurrency" in leaf_dso:
            category = "Swift concurrency runtime"
        elif "libnghttp2" in leaf_dso:
            category = "nghttp2 (own code)"
        elif "protobuf-c" in leaf_dso:
            category = "protobuf-c"
        if category is None:
            for name, pattern in LEAF:
                if re.search(pattern, leaf_sym):
                    category = name
                    break
        if category is None:
            category = "other (TowerRPC/NIO code, libc, TLS lookups)"
        leaves[category] += 1

    for line in sys.stdin:
        if not line.startswith(("\t", " ")):
            flush_sample()
            stack = []
            continue
        parts = line.strip().split(" ", 1)
        if len(parts) == 2:
            stack.append(parts[1])
    flush_sample()

    def show(title: str, counter: Counter) -> None:
        print(f"| {title} | share | " + ("µs/req |" if us_per_req else ""))
        print("|---|---:|" + ("---:|" if us_per_req else ""))
        for name, count in counter.most_common():
            share = count / total
            extra = f" {share * us_per_req:.2f} |" if us_per_req else ""
            print(f"| {name} | {share * 100:.1f} % |{extra}")
        print()

    print(f"{total} samples\n")
    show("phase (by stack)", phases)
    show("leaf category (innermost frame)", leaves)


if __name__ == "__main__":
    main()
