import CNghttp2

/// Header fields as the `nghttp2_nv` array nghttp2's submit functions take, valid for the call.
/// Public for the bench's HTTP/2 load client (`wsgate-bench`), which submits requests the same way.
public enum NGHTTP2HeaderVector {
    public static func with<T>(_ headers: [(String, String)], _ body: (UnsafePointer<nghttp2_nv>?, Int) -> T) -> T {
        var storage: [UInt8] = []
        var spans: [(Int, Int, Int, Int)] = []
        for (name, value) in headers {
            let nameStart = storage.count
            storage += name.utf8
            let valueStart = storage.count
            storage += value.utf8
            spans.append((nameStart, name.utf8.count, valueStart, value.utf8.count))
        }
        return storage.withUnsafeMutableBufferPointer { bytes in
            let base = bytes.baseAddress  // nil only with no header at all: then no span points into it
            let vector = spans.map { span in
                nghttp2_nv(name: base.map { $0 + span.0 }, value: base.map { $0 + span.2 }, namelen: span.1, valuelen: span.3,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return vector.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
        }
    }
}
