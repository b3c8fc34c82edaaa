import NIOCore

/// NIO keeps each channel's last receive buffer for reuse, so its starting size is memory every
/// idle connection holds. Start small (a handshake fits in a few reads) and let busy connections
/// grow their buffer to 64 KiB, as the adaptive allocator doubles after every full read.
enum ReceiveBuffers {
    static let allocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 512, maximum: 64 * 1024)
}
