// What the admin console's SHOW CONFIG displays, and which changes a reload cannot apply.

extension SwitchyardConfiguration {
    /// Every effective setting under its YAML key path, in file order, with secrets hidden:
    /// the upstream URI is shown redacted and the admin console password as "********" or "(none)".
    /// Each migration and flag is one line under its name (`migrations.users_v2`, `flags.users_v2`).
    public func summaryLines() -> [(key: String, value: String)] {
        var lines: [(key: String, value: String)] = [
            ("listen", listen.description),
            ("upstream", upstream.redacted),
            ("admin_listen", adminListen?.description ?? "off"),
            ("workers", String(workers)),
            ("max_client_connections", String(maxClientConnections)),
            ("max_message_size", ConfigValues.describe(byteSize: maxMessageSize)),
            ("prepare_routed_reads", String(prepareRoutedReads)),
            ("startup_timeout", ConfigValues.describe(duration: startupTimeout)),
            ("connect_timeout", ConfigValues.describe(duration: connectTimeout)),
            ("shutdown_timeout", ConfigValues.describe(duration: shutdownTimeout)),
            ("client_idle_timeout", ConfigValues.describe(duration: clientIdleTimeout)),
            ("idle_transaction_timeout", ConfigValues.describe(duration: idleTransactionTimeout)),
            ("tcp_keepalive.enabled", String(tcpKeepalive.enabled)),
            ("tcp_keepalive.idle", ConfigValues.describe(duration: tcpKeepalive.idle)),
            ("tcp_keepalive.interval", ConfigValues.describe(duration: tcpKeepalive.interval)),
            ("tcp_keepalive.count", String(tcpKeepalive.count)),
            // Shown as a YAML flow list so an empty list (console disabled) is visible rather than blank.
            ("admin_console.users", "[" + adminConsole.users.joined(separator: ", ") + "]"),
            ("admin_console.password", adminConsole.password == nil ? "(none)" : "********"),
            ("log.level", log.level),
            ("log.format", log.format.rawValue),
            ("shadow_reads.connections", String(shadowReads.connections)),
            ("shadow_reads.queue", String(shadowReads.queue)),
            ("shadow_reads.statement_timeout", ConfigValues.describe(duration: shadowReads.statementTimeout)),
        ] + tlsSummaryLines()
        for migration in migrations {
            lines.append(("migrations.\(migration.name)", Self.summary(of: migration)))
        }
        for flag in flags {
            lines.append(("flags.\(flag.name)", Self.summary(of: flag)))
        }
        lines.append(("control.schema", RelationName.quotedIdentifier(control.schema)))
        lines.append(("control.database", control.database?.redacted ?? "(upstream)"))
        return lines
    }

    /// "public.users -> public.users_v2 key=[id] columns=3 extra_new_columns=1", plus the backfill keys not at
    /// their defaults ("backfill={batch_size: 500}").
    static func summary(of migration: MigrationConfig) -> String {
        var text = "\(migration.old) -> \(migration.new)"
        text += " key=[" + migration.key.map(RelationName.quotedIdentifier).joined(separator: ", ") + "]"
        text += " columns=\(migration.columns.count)"
        if !migration.extraNewColumns.isEmpty {
            text += " extra_new_columns=\(migration.extraNewColumns.count)"
        }
        let backfill = migration.backfill.nonDefaultSettings
        if !backfill.isEmpty {
            text += " backfill={" + backfill.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
        return text
    }

    /// "canary 12.50% migration=users_v2 cohort_key=[comment:cohort, ...]", plus salt, routing and the shadow keys
    /// when not defaults ("shadow={shadow_sample: 0.05}").
    static func summary(of flag: FlagConfig) -> String {
        var text = "\(flag.stage.rawValue) \(ConfigValues.describe(basisPoints: flag.percentBasisPoints))"
        text += " migration=\(flag.migration)"
        text += " cohort_key=[" + flag.cohortKey.map(\.description).joined(separator: ", ") + "]"
        if flag.salt != flag.name {
            text += " salt=\(quoted(flag.salt))"
        }
        if flag.routing != .rewrite {
            text += " routing=\(flag.routing)"
        }
        let shadow = flag.shadow.nonDefaultSettings
        if !shadow.isEmpty {
            text += " shadow={" + shadow.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
        return text
    }

    /// The keys that differ in `new` but only take effect at restart, because they decide which sockets
    /// are bound and how many event-loop threads exist. A reload applies everything else, including
    /// migrations, flags and the control settings.
    public func restartRequiredChanges(to new: SwitchyardConfiguration) -> [String] {
        var keys: [String] = []
        if listen != new.listen { keys.append("listen") }
        if adminListen != new.adminListen { keys.append("admin_listen") }
        if workers != new.workers { keys.append("workers") }
        return keys
    }
}
