import Synchronization
import TowerProtoRuntime

@testable import TowerRPC

/// A stand-in message: the payload bytes are the wire form. A first byte of 0xFF is "garbage".
struct Blob: ProtoMessage {
    static let protoMessageName = "test.Blob"
    var bytes: [UInt8]

    init() { bytes = [] }
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { bytes = Array(text.utf8) }
    init(protobufBytes raw: UnsafeRawBufferPointer) throws(ProtoDecodingError) {
        if raw.first == 0xFF { throw ProtoDecodingError(message: "garbage") }
        bytes = Array(raw)
    }
    func withProtobufBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }
    func jsonValue() -> JSONValue { .string(text) }
    init(jsonValue: JSONValue) throws(ProtoDecodingError) {
        guard case .string(let text) = jsonValue else { throw ProtoDecodingError(message: "not a string") }
        bytes = Array(text.utf8)
    }
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

enum Echo {
    static let service = "test.Echo"
    static let unary = MethodDescriptor(service: service, method: "Say", kind: .unary)
    static let expand = MethodDescriptor(service: service, method: "Expand", kind: .serverStreaming)
    static let collect = MethodDescriptor(service: service, method: "Collect", kind: .clientStreaming)
    static let chat = MethodDescriptor(service: service, method: "Chat", kind: .bidiStreaming)
    static let sleep = MethodDescriptor(service: service, method: "Sleep", kind: .unary)
    static let fail = MethodDescriptor(service: service, method: "Fail", kind: .unary)
    static let big = MethodDescriptor(service: service, method: "Big", kind: .unary)
    static let metadata = MethodDescriptor(service: service, method: "Metadata", kind: .unary)
    static let compressed = MethodDescriptor(service: service, method: "Compressed", kind: .serverStreaming)
    static let slowStream = MethodDescriptor(service: service, method: "SlowStream", kind: .serverStreaming)
}

struct DomainError: RPCErrorConvertible {
    var rpcError: RPCError { RPCError(.notFound, "Lead 42 was not found.") }
}
struct SecretError: Error { var secret = "password=hunter2" }

/// Records what handlers saw, for assertions on cancellation.
final class Probe: Sendable {
    private let state = Mutex<[String]>([])
    func note(_ event: String) { state.withLock { $0.append(event) } }
    var events: [String] { state.withLock { $0 } }
    func wait(for event: String) async {
        for _ in 0..<500 {
            if events.contains(event) { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

struct EchoService: RPCService {
    let probe: Probe

    var methodHandlers: [RPCMethodHandler] {
        [
            .unary(Echo.unary) { (request: Blob, _) in Blob(request.bytes) },
            .serverStreaming(Echo.expand) { (request: Blob, writer: ResponseStreamWriter<Blob>, _) in
                for part in request.text.split(separator: " ") { try await writer.write(Blob(String(part))) }
            },
            .clientStreaming(Echo.collect) { (requests: RequestStream<Blob>, _) in
                var parts: [String] = []
                for try await request in requests { parts.append(request.text) }
                return Blob(parts.joined(separator: ","))
            },
            .bidiStreaming(Echo.chat) { (requests: RequestStream<Blob>, writer: ResponseStreamWriter<Blob>, _) in
                for try await request in requests { try await writer.write(Blob("echo:" + request.text)) }
            },
            .unary(Echo.sleep) { (request: Blob, context) in
                probe.note("sleep-start")
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    probe.note("sleep-cancelled")
                    throw error
                }
                return request
            },
            .unary(Echo.fail) { (request: Blob, _) -> Blob in
                switch request.text {
                case "domain": throw DomainError()
                case "secret": throw SecretError()
                default:
                    throw RPCError(
                        code: .invalidArgument, message: "bad ☺ 100%\n", metadata: ["x-why": "because"], statusDetails: [1, 2, 3])
                }
            },
            .unary(Echo.big) { (request: Blob, _) in Blob([UInt8](repeating: 7, count: Int(request.text)!)) },
            .unary(Echo.metadata) { (request: Blob, context) in
                context.addInitialMetadata("x-initial", context.requestMetadata.first("x-echo") ?? "none")
                if let binary = context.requestMetadata.first("x-echo-bin") { context.addTrailingMetadata("x-trailing-bin", binary) }
                return Blob(context.requestMetadata.values("x-multi").map(\.description).joined(separator: "|"))
            },
            .serverStreaming(Echo.compressed) { (request: Blob, writer: ResponseStreamWriter<Blob>, context) in
                context.responseCompression = .gzip
                try await writer.write(Blob(request.bytes + (context.lastRequestWasCompressed ? [1] : [0])))
                try await writer.write(Blob(request.bytes), compress: false)
            },
            .serverStreaming(Echo.slowStream) { (request: Blob, writer: ResponseStreamWriter<Blob>, _) in
                probe.note("slow-start")
                try await Task.sleep(for: .milliseconds(300))
                try await writer.write(request)
                probe.note("slow-done")
            },
        ]
    }
}
