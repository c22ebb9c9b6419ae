// What the admin console's SHOW CONFIG displays, and which changes a reload cannot apply.

extension SwitchyardConfiguration {
    /// Every effective setting under its YAML key path, in file order, with secrets hidden:
    /// the upstream URI is shown redacted and the admin console password as "********" or "(none)".
    public func summaryLines() -> [(key: String, value: String)] {
        [
            ("listen", listen.description),
            ("upstream", upstream.redacted),
            ("admin_listen", adminListen?.description ?? "off"),
            ("workers", String(workers)),
            ("max_client_connections", String(maxClientConnections)),
            ("max_message_size", ConfigValues.describe(byteSize: maxMessageSize)),
            ("startup_timeout", ConfigValues.describe(duration: startupTimeout)),
            ("connect_timeout", ConfigValues.describe(duration: connectTimeout)),
            ("shutdown_timeout", ConfigValues.describe(duration: shutdownTimeout)),
            ("tcp_keepalive.enabled", String(tcpKeepalive.enabled)),
            ("tcp_keepalive.idle", ConfigValues.describe(duration: tcpKeepalive.idle)),
            ("tcp_keepalive.interval", ConfigValues.describe(duration: tcpKeepalive.interval)),
            ("tcp_keepalive.count", String(tcpKeepalive.count)),
            // Shown as a YAML flow list so an empty list (console disabled) is visible rather than blank.
            ("admin_console.users", "[" + adminConsole.users.joined(separator: ", ") + "]"),
            ("admin_console.password", adminConsole.password == nil ? "(none)" : "********"),
            ("log.level", log.level),
            ("log.format", log.format.rawValue),
        ]
    }

    /// The keys that differ in `new` but only take effect at restart, because they decide which sockets
    /// are bound and how many event-loop threads exist. A reload applies everything else.
    public func restartRequiredChanges(to new: SwitchyardConfiguration) -> [String] {
        var keys: [String] = []
        if listen != new.listen { keys.append("listen") }
        if adminListen != new.adminListen { keys.append("admin_listen") }
        if workers != new.workers { keys.append("workers") }
        return keys
    }
}
