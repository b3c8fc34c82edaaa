import Testing

/// Drives a state machine through one event in each of `states` (each reached by `machine(in:)`)
/// and checks what the event returns and the state it leaves behind against `expected`, which must
/// name every state: the table of a state machine's transitions, one event at a time.
func expectTransitions<Machine, State: Hashable, Result: Equatable>(
    _ states: [State], machine: (State) -> Machine, state: (Machine) -> State,
    _ event: (inout Machine) -> Result, _ expected: [State: (Result, State)], sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(Set(expected.keys) == Set(states), "every state has an expectation", sourceLocation: sourceLocation)
    for start in states {
        guard let (result, next) = expected[start] else { continue }
        var subject = machine(start)
        let got = event(&subject)
        #expect(got == result, "in \(start)", sourceLocation: sourceLocation)
        #expect(state(subject) == next, "in \(start)", sourceLocation: sourceLocation)
    }
}
