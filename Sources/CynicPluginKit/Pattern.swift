/// Filler for bodies of any size: one line of text, again and again. A client's copy shows where
/// it was cut, and since each byte depends only on its offset, a body is made piece by piece,
/// never held whole.
public enum Pattern {
    /// 64 bytes, so a piece that starts at a multiple of 64 starts a line.
    public static let line = Array("cynic pattern - the same 64 bytes, line after line, to the end.\n".utf8)

    /// The bytes at `offsets` of the endless repetition of `line`.
    public static func bytes(_ offsets: Range<UInt64>) -> [UInt8] {
        offsets.map { line[Int($0 % UInt64(line.count))] }
    }
}
