// SQLSTATE codes Switchyard reports to clients or acts on.
// https://www.postgresql.org/docs/current/errcodes-appendix.html

public enum SQLState {
    public static let unableToConnect = "08001"            // sqlclient_unable_to_establish_sqlconnection
    public static let connectionFailure = "08006"
    public static let protocolViolation = "08P01"
    public static let featureNotSupported = "0A000"
    public static let invalidAuthorizationSpecification = "28000"
    public static let invalidPassword = "28P01"
    public static let tooManyConnections = "53300"
    public static let programLimitExceeded = "54000"
    public static let adminShutdown = "57P01"
    public static let cannotConnectNow = "57P03"
    /// idle_session_timeout and idle_in_transaction_session_timeout, as PostgreSQL names them.
    public static let idleSessionTimeout = "57P05"
    public static let idleInTransactionSessionTimeout = "25P03"
    public static let syntaxError = "42601"
    /// The server has no prepared statement by that name.
    public static let invalidSQLStatementName = "26000"
    public static let queryCanceled = "57014"
    public static let internalError = "XX000"
}
