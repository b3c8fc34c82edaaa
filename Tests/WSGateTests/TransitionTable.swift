import Testing
@testable import WSGate

/// A state machine whose state the tables compare.
protocol StateMachine {
    associatedtype State: Hashable
    var state: State { get }
}

extension HTTP1ConnectionState: StateMachine {}
extension HTTP2StreamState: StateMachine {}
extension WebSocketCloseHandshake: StateMachine {}
extension InflatingMessage: StateMachine {}
extension DeflatingMessage: StateMachine {}

/// A suite of transition tables: every state it can reach a machine in, and how.
protocol TransitionTableSuite {
    associatedtype Machine: StateMachine
    static var allStates: [Machine.State] { get }
    static func machine(in state: Machine.State) -> Machine
}

extension TransitionTableSuite {
    /// Drives a machine through one event in each state (each reached by `machine(in:)`) and checks
    /// what the event returns and the state it leaves behind against `expected`, which must name
    /// every state: the table of a state machine's transitions, one event at a time.
    func check<Result: Equatable>(_ event: (inout Machine) -> Result, _ expected: [Machine.State: (Result, Machine.State)],
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(Set(expected.keys) == Set(Self.allStates), "every state has an expectation", sourceLocation: sourceLocation)
        for start in Self.allStates {
            guard let (result, next) = expected[start] else { continue }
            var subject = Self.machine(in: start)
            let got = event(&subject)
            #expect(got == result, "in \(start)", sourceLocation: sourceLocation)
            #expect(subject.state == next, "in \(start)", sourceLocation: sourceLocation)
        }
    }
}
