#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum SignalMask {
    /// Unblocks the signals wsgate acts on. A blocked mask is inherited across exec, and some
    /// supervisors and test runners start children with SIGTERM blocked: such a gateway would never
    /// drain. Call before the event loops start, so their threads inherit the unblocked mask.
    static func unblockLifecycleSignals() {
        #if canImport(Glibc) || canImport(Musl)
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        // SIGHUP's default action ends the process: ignore it until the reloader traps it, so a
        // reload requested while the gateway is still starting is not fatal.
        signal(SIGHUP, SIG_IGN)
        #endif
    }
}
