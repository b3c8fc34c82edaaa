import NIOHTTP1
import Testing
@testable import WSGate

/// Every event in every state of ``HTTP1ConnectionState``, and what clients force at awkward moments:
/// a request pipelined behind a file, reads asked for while a backend is being opened, a handshake
/// whose client left before the 101.
@Suite struct HTTP1ConnectionStateTests: TransitionTableSuite {
    typealias State = HTTP1ConnectionState.State

    static let allStates: [State] = [.awaitingHead, .readingRequest, .connectingBackend, .servingFile, .upgraded, .closing]

    static let request = HTTP1ConnectionState.Request(decision: .refuse(HTTPRefusal(.notFound, "no route", closesConnection: false, label: "no_route")), keepAlive: true, isHead: false)

    static func machine(in state: State) -> HTTP1ConnectionState {
        var machine = HTTP1ConnectionState()
        if state != .awaitingHead && state != .closing { machine.head { request } }
        switch state {
        case .awaitingHead, .readingRequest: break
        case .connectingBackend, .upgraded:
            _ = machine.end()
            machine.connectingBackend(key: "k")
            if state == .upgraded { _ = machine.upgrade() }
        case .servingFile:
            _ = machine.end()
            machine.servingFile()
        case .closing: machine.close()
        }
        #expect(machine.state == state, "could not reach \(state)")
        return machine
    }


    @Test func onlyAnAwaitedHeadIsDecided() {
        self.check({ machine -> Bool in
            var decided = false
            machine.head {
                decided = true
                return Self.request
            }
            return decided
        }, [
            .awaitingHead: (true, .readingRequest), .readingRequest: (false, .readingRequest), .connectingBackend: (false, .connectingBackend),
            .servingFile: (false, .servingFile), .upgraded: (false, .upgraded), .closing: (false, .closing),
        ])
    }

    @Test func aRequestsEndIsAnsweredOnlyOnce() {
        self.check({ $0.end() != nil }, [
            .awaitingHead: (false, .awaitingHead), .readingRequest: (true, .readingRequest), .connectingBackend: (false, .connectingBackend),
            .servingFile: (false, .servingFile), .upgraded: (false, .upgraded), .closing: (false, .closing),
        ])
        var machine = Self.machine(in: .readingRequest)
        let first = machine.end()
        let second = machine.end()
        #expect(first != nil && second == nil)
    }

    @Test func the101GoesOnlyToAHandshakeWaitingForItsBackend() {
        self.check({ $0.upgrade() }, [
            .awaitingHead: (nil, .awaitingHead), .readingRequest: (nil, .readingRequest), .connectingBackend: ("k", .upgraded),
            .servingFile: (nil, .servingFile), .upgraded: (nil, .upgraded), .closing: (nil, .closing),
        ])
    }

    @Test func theClientIsNotReadWhileItsAnswerIsPending() {
        self.check({ $0.read() }, [
            .awaitingHead: (true, .awaitingHead), .readingRequest: (true, .readingRequest), .connectingBackend: (false, .connectingBackend),
            .servingFile: (false, .servingFile), .upgraded: (true, .upgraded), .closing: (false, .closing),
        ])
    }

    @Test func aKeptAliveResponseWaitsForTheNextRequestUnlessClosing() {
        let next = HTTP1ConnectionState.AfterResponse.awaitNext(read: false)
        self.check({ $0.responseEnded(keepAlive: true) }, [
            .awaitingHead: (next, .awaitingHead), .readingRequest: (next, .awaitingHead), .connectingBackend: (next, .awaitingHead),
            .servingFile: (next, .awaitingHead), .upgraded: (next, .awaitingHead), .closing: (.close, .closing),
        ])
        self.check({ $0.responseEnded(keepAlive: false) }, [
            .awaitingHead: (.close, .closing), .readingRequest: (.close, .closing), .connectingBackend: (.close, .closing),
            .servingFile: (.close, .closing), .upgraded: (.close, .closing), .closing: (.close, .closing),
        ])
    }

    @Test func closingIsFinal() {
        self.check({ machine -> Bool in machine.close(); return machine.answersMalformedRequests }, [
            .awaitingHead: (false, .closing), .readingRequest: (false, .closing), .connectingBackend: (false, .closing),
            .servingFile: (false, .closing), .upgraded: (false, .closing), .closing: (false, .closing),
        ])
        #expect(Self.allStates.filter { Self.machine(in: $0).answersMalformedRequests } == [.awaitingHead, .readingRequest])
    }

    @Test func aReadHeldDuringAFileGoesWithTheNextRequest() {
        var machine = Self.machine(in: .servingFile)
        let reads = machine.read()
        let first = machine.responseEnded(keepAlive: true)
        let second = machine.responseEnded(keepAlive: true)
        #expect(!reads)
        #expect(first == .awaitNext(read: true))
        #expect(second == .awaitNext(read: false))
    }

    @Test func aRequestPipelinedBehindAFileClosesTheConnectionAfterIt() {
        var machine = Self.machine(in: .servingFile)
        machine.head { Self.request }
        #expect(machine.state == .servingFile)
        let after = machine.responseEnded(keepAlive: true)
        #expect(after == .close)
        #expect(machine.state == .closing)
    }

    @Test func theRequestsKeepAliveDecidesForItsFile() {
        var machine = HTTP1ConnectionState()
        machine.head { .init(decision: Self.request.decision, keepAlive: false, isHead: true) }
        let request = machine.end()
        #expect(request?.isHead == true)
        machine.servingFile()
        #expect(!machine.keepAlive)
    }
}
