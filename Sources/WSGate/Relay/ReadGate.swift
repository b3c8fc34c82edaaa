import NIOCore

/// GlueHandler-style flow control for one leg: it reads only while its partner can take more
/// writes, and a read asked for meanwhile is replayed once the partner drains.
struct ReadGate {
    private var pending = false

    /// From the leg's `read(context:)`.
    mutating func read(_ context: ChannelHandlerContext, partnerIsWritable: Bool) {
        if partnerIsWritable {
            context.read()
        } else {
            self.pending = true
        }
    }

    /// When the partner became writable again.
    mutating func resume(_ context: ChannelHandlerContext) {
        guard self.pending else { return }
        self.pending = false
        context.read()
    }
}
