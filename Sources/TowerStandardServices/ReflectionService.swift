import TowerProto
import TowerProtoRuntime
import TowerRPC

/// Server reflection, `grpc.reflection.v1` and `grpc.reflection.v1alpha` (grpcurl tries v1 and
/// falls back; evans and older tools ask for v1alpha). Both answer from the same index of the
/// `.proto` files compiled into the server.
public struct ReflectionService: Sendable {
    private let index: ReflectionIndex

    /// - Parameters:
    ///   - files: the descriptors of every generated module the server links (e.g. `TowerProtoFiles.all`).
    ///   - serviceNames: the services the server actually serves, as list_services reports them.
    public init(files: [ProtoFileDescriptor], serviceNames: [String]) {
        index = ReflectionIndex(files: files, serviceNames: serviceNames)
    }

    /// The v1 service, to register with the server.
    public var v1: V1 { V1(index: index) }
    /// The v1alpha service, to register with the server.
    public var v1alpha: V1Alpha { V1Alpha(index: index) }

    public static let serviceNames = [
        Grpc_Reflection_V1_ServerReflection.serviceName, Grpc_Reflection_V1alpha_ServerReflection.serviceName,
    ]

    public struct V1: Grpc_Reflection_V1_ServerReflection.ServiceProtocol {
        let index: ReflectionIndex

        public func serverReflectionInfo(
            requests: RequestStream<Grpc_Reflection_V1_ServerReflectionRequest>,
            responses: ResponseStreamWriter<Grpc_Reflection_V1_ServerReflectionResponse>, context: ServerContext
        ) async throws {
            for try await request in requests {
                var response = Grpc_Reflection_V1_ServerReflectionResponse()
                response.validHost = request.host
                response.originalRequest = request
                switch index.answer(ReflectionQuery(request.messageRequest)) {
                case .files(let files):
                    var r = Grpc_Reflection_V1_FileDescriptorResponse()
                    r.fileDescriptorProto = files
                    response.messageResponse = .fileDescriptorResponse(r)
                case .services(let names):
                    var r = Grpc_Reflection_V1_ListServiceResponse()
                    r.service = names.map {
                        var s = Grpc_Reflection_V1_ServiceResponse(); s.name = $0; return s
                    }
                    response.messageResponse = .listServicesResponse(r)
                case .extensionNumbers(let type):
                    var r = Grpc_Reflection_V1_ExtensionNumberResponse()
                    r.baseTypeName = type
                    response.messageResponse = .allExtensionNumbersResponse(r)
                case .error(let code, let message):
                    var r = Grpc_Reflection_V1_ErrorResponse()
                    r.errorCode = Int32(code.rawValue)
                    r.errorMessage = message
                    response.messageResponse = .errorResponse(r)
                }
                try await responses.write(response)
            }
        }
    }

    public struct V1Alpha: Grpc_Reflection_V1alpha_ServerReflection.ServiceProtocol {
        let index: ReflectionIndex

        public func serverReflectionInfo(
            requests: RequestStream<Grpc_Reflection_V1alpha_ServerReflectionRequest>,
            responses: ResponseStreamWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>, context: ServerContext
        ) async throws {
            for try await request in requests {
                var response = Grpc_Reflection_V1alpha_ServerReflectionResponse()
                response.validHost = request.host
                response.originalRequest = request
                switch index.answer(ReflectionQuery(request.messageRequest)) {
                case .files(let files):
                    var r = Grpc_Reflection_V1alpha_FileDescriptorResponse()
                    r.fileDescriptorProto = files
                    response.messageResponse = .fileDescriptorResponse(r)
                case .services(let names):
                    var r = Grpc_Reflection_V1alpha_ListServiceResponse()
                    r.service = names.map {
                        var s = Grpc_Reflection_V1alpha_ServiceResponse(); s.name = $0; return s
                    }
                    response.messageResponse = .listServicesResponse(r)
                case .extensionNumbers(let type):
                    var r = Grpc_Reflection_V1alpha_ExtensionNumberResponse()
                    r.baseTypeName = type
                    response.messageResponse = .allExtensionNumbersResponse(r)
                case .error(let code, let message):
                    var r = Grpc_Reflection_V1alpha_ErrorResponse()
                    r.errorCode = Int32(code.rawValue)
                    r.errorMessage = message
                    response.messageResponse = .errorResponse(r)
                }
                try await responses.write(response)
            }
        }
    }
}

/// A reflection request, independent of the protocol version it arrived in.
enum ReflectionQuery {
    case fileByName(String)
    case fileContainingSymbol(String)
    case fileContainingExtension(String, Int32)
    case extensionNumbers(String)
    case listServices
    case empty

    init(_ r: Grpc_Reflection_V1_ServerReflectionRequest.MessageRequest?) {
        switch r {
        case .fileByFilename(let n): self = .fileByName(n)
        case .fileContainingSymbol(let s): self = .fileContainingSymbol(s)
        case .fileContainingExtension(let e): self = .fileContainingExtension(e.containingType, e.extensionNumber)
        case .allExtensionNumbersOfType(let t): self = .extensionNumbers(t)
        case .listServices: self = .listServices
        case nil: self = .empty
        }
    }

    init(_ r: Grpc_Reflection_V1alpha_ServerReflectionRequest.MessageRequest?) {
        switch r {
        case .fileByFilename(let n): self = .fileByName(n)
        case .fileContainingSymbol(let s): self = .fileContainingSymbol(s)
        case .fileContainingExtension(let e): self = .fileContainingExtension(e.containingType, e.extensionNumber)
        case .allExtensionNumbersOfType(let t): self = .extensionNumbers(t)
        case .listServices: self = .listServices
        case nil: self = .empty
        }
    }
}

enum ReflectionAnswer {
    case files([[UInt8]])
    case services([String])
    case extensionNumbers(String)
    case error(RPCError.Code, String)
}

/// Files by name and by the symbols they define, with each file's transitive dependencies.
struct ReflectionIndex: Sendable {
    let files: [String: ProtoFileDescriptor]
    let fileOfSymbol: [String: String]
    let serviceNames: [String]

    init(files list: [ProtoFileDescriptor], serviceNames: [String]) {
        var files: [String: ProtoFileDescriptor] = [:]
        var fileOfSymbol: [String: String] = [:]
        for f in list {
            files[f.name] = f
            for s in f.symbols { fileOfSymbol[s] = f.name }
        }
        self.files = files
        self.fileOfSymbol = fileOfSymbol
        self.serviceNames = serviceNames.sorted()
    }

    func answer(_ query: ReflectionQuery) -> ReflectionAnswer {
        switch query {
        case .listServices:
            return .services(serviceNames)
        case .fileByName(let name):
            guard files[name] != nil else { return .error(.notFound, "no file named \(name)") }
            return .files(withDependencies(name))
        case .fileContainingSymbol(let symbol):
            let trimmed = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
            guard let file = fileOfSymbol[trimmed] else { return .error(.notFound, "no symbol named \(trimmed)") }
            return .files(withDependencies(file))
        case .fileContainingExtension(let type, let number):
            return .error(.notFound, "\(type) has no extension \(number)")
        case .extensionNumbers(let type):
            guard fileOfSymbol[type] != nil else { return .error(.notFound, "no message type named \(type)") }
            return .extensionNumbers(type)
        case .empty:
            return .error(.invalidArgument, "the request names no query: set one of the message_request fields")
        }
    }

    /// The file first, then every file it depends on (transitively), each once.
    func withDependencies(_ name: String) -> [[UInt8]] {
        var order: [String] = []
        var seen: Set<String> = []
        var queue = [name]
        while !queue.isEmpty {
            let n = queue.removeFirst()
            guard seen.insert(n).inserted, let f = files[n] else { continue }
            order.append(n)
            queue.append(contentsOf: f.dependencies)
        }
        return order.compactMap { files[$0]?.serialized }
    }
}
