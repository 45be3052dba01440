extension String {
    /// The string without leading and trailing `character`s (Foundation-free and unambiguous).
    func trimmed(_ character: Character) -> String {
        var s = Substring(self)
        while s.first == character { s = s.dropFirst() }
        while s.last == character { s = s.dropLast() }
        return String(s)
    }
}
