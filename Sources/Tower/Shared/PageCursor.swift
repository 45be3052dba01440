import TowerProto
import TowerProtoRuntime

/// Keyset pagination: a page token is the sort key of the last item returned, opaque to clients
/// (base64url), so pages stay stable while rows are added.
struct PageCursor: Sendable, Hashable {
    var sortKey: String
    var id: String

    static let defaultSize = 50
    static let maxSize = 500

    /// The page size a request asks for, validated.
    static func size(_ page: PageRequest?, field: String = "page.page_size") throws -> Int {
        let size = Int(page?.pageSize ?? 0)
        guard size >= 0, size <= maxSize else {
            throw DomainError.invalid(field, "must be between 1 and \(maxSize) (0 means \(defaultSize))")
        }
        return size == 0 ? defaultSize : size
    }

    static func decode(_ page: PageRequest?, field: String = "page.page_token") throws -> PageCursor? {
        guard let token = page?.pageToken, !token.isEmpty else { return nil }
        guard let bytes = Base64.decode(token), let text = String(validating: bytes, as: UTF8.self) else {
            throw invalidToken(field)
        }
        let parts = text.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw invalidToken(field) }
        return PageCursor(sortKey: String(parts[0]), id: String(parts[1]))
    }

    /// The answer to a token this service did not issue (or one whose keys do not parse).
    static func invalidToken(_ field: String = "page.page_token") -> DomainError {
        DomainError.invalid(field, "is not a token this service issued; pass next_page_token from the previous page")
    }

    /// The keys of a cursor over rows ordered by time then id: microseconds since the epoch
    /// (exact in SQL) and a UUID.
    func timeKey(field: String = "page.page_token") throws -> (micros: Int64, id: UUIDText) {
        guard let micros = Int64(sortKey), let id = UUIDText(id) else { throw Self.invalidToken(field) }
        return (micros, id)
    }

    var token: String { Base64.encode(Array((sortKey + "\u{1F}" + id).utf8), padded: false, urlSafe: true) }

    /// The LIMIT of a keyset query for a page of `size`: one row more, read by `KeysetPage`.
    static func fetchLimit(_ size: Int) -> Int { size + 1 }

    static func info(next: PageCursor?) -> PageInfo {
        var info = PageInfo()
        info.nextPageToken = next?.token ?? ""
        info.totalSize = -1
        return info
    }
}

/// One page of a keyset query that fetched `PageCursor.fetchLimit(size)` rows: the one row past the page only
/// says that another page follows. The next token comes from the page's last row, either from
/// the raw row (`info(cursor:)`) or from the item it became (`info(last:cursor:)`).
struct KeysetPage<Row> {
    /// The page's rows, at most `size`.
    let rows: [Row]
    let hasMore: Bool

    init(_ fetched: some Collection<Row>, size: Int) {
        rows = Array(fetched.prefix(size))
        hasMore = fetched.count > size
    }

    /// Page info whose next token is the cursor of the page's last raw row.
    func info(cursor: (Row) throws -> PageCursor) rethrows -> PageInfo {
        PageCursor.info(next: hasMore ? try rows.last.map(cursor) : nil)
    }

    /// Page info whose next token is the cursor of the last item the rows became.
    func info<Item>(last item: Item?, cursor: (Item) throws -> PageCursor?) rethrows -> PageInfo {
        PageCursor.info(next: hasMore ? try item.flatMap(cursor) : nil)
    }
}
