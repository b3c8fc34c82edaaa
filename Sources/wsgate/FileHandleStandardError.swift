import WSGate

enum FileHandleStandardError {
    static func write(_ string: String) {
        JSONLogHandler.writeToStandardError(string)
    }
}
