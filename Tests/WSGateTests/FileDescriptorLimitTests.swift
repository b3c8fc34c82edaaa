#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import WSGate

@Suite struct FileDescriptorLimitTests {
    @Test func softLimitIsRaisedToTheHardLimit() {
        let reported = FileDescriptorLimit.raiseToHardLimit()
        var limit = rlimit()
        #if canImport(Glibc)
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #else
        #expect(getrlimit(RLIMIT_NOFILE, &limit) == 0)
        #endif
        #expect(limit.rlim_cur == limit.rlim_max)
        #expect(reported == Int(clamping: limit.rlim_cur))
    }
}
