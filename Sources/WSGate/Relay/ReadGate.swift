import NIOCore

/// GlueHandler-style flow control for one leg: it reads only while its partner can take more
/// writes (and, for a client leg, its rate limit allows), and a read asked for meanwhile is
/// replayed once the partner drains (or the rate limit's wait is over).
///
/// It decides and the handler calls `context.read()`: a call into the pipeline made inside an
/// access to the handler's property would make the compiler check every access to it at run time.
struct ReadGate {
    private var pending = false

    /// From the leg's `read(context:)`: whether to pass the read on now.
    mutating func read(allowed: Bool) -> Bool {
        if allowed { return true }
        self.pending = true
        return false
    }

    /// When reading may go on again: whether a read waited (pass it on now).
    mutating func resume() -> Bool {
        guard self.pending else { return false }
        self.pending = false
        return true
    }
}
