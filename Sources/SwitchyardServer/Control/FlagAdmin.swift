// Flag commands for the CLI: they act on the control schema, so they reach every running instance.
import SwitchyardConfig

public enum FlagAdmin {
    public static func list(_ config: SwitchyardConfiguration) throws(ControlError) -> [StoredFlag] {
        let (connection, store) = try ControlSync.open(config)
        return try store.load(connection)
    }

    public static func set(_ config: SwitchyardConfiguration, name: String, stage: FlagStage, percentBasisPoints: Int?, by: String, why: String) throws(ControlError) -> StoredFlag {
        let (connection, store) = try ControlSync.open(config)
        return try store.setFlag(connection, name: name, stage: stage, percentBasisPoints: percentBasisPoints, by: by, why: why)
    }

    public static func history(_ config: SwitchyardConfiguration, limit: Int) throws(ControlError) -> [FlagFlip] {
        let (connection, store) = try ControlSync.open(config)
        return try store.history(connection, limit: limit)
    }
}
