// Reads of the control schema's flag state are applied in the order they began, never an older over a newer one.
import SwitchyardConfig
@testable import SwitchyardServer
import Testing

@Suite("Stored flag state")
struct StoredFlagOrderTests {
    static let yaml = """
        upstream: postgresql://switchyard@127.0.0.1:5432/postgres
        migrations:
          - { name: users_v2, old: public.users, new: public.users_v2, key: [id], columns: { id: id } }
        flags:
          - { name: users_v2, migration: users_v2, stage: shadow }
        """

    static func stored(_ stage: FlagStage) -> [StoredFlag] {
        [StoredFlag(name: "users_v2", migration: "users_v2", stage: stage, percentBasisPoints: 0, updatedAt: "", updatedBy: nil)]
    }

    @Test("a read begun before a newer one was applied (a SET FLAG while the control thread reads) is not laid over it")
    func olderReadIgnored() throws {
        let hub = RoutingHub()
        hub.load(try ConfigLoader.parse(yaml: Self.yaml))
        #expect(hub.current.flags.first?.stage == .shadow)
        // The control thread's read begins, the console's flip is written and read back and
        // applied, then the control thread's read (of the state before the flip) finishes.
        hub.applyStored { () -> [StoredFlag] in
            hub.applyStored { Self.stored(.live) }
            #expect(hub.current.flags.first?.stage == .live)
            return Self.stored(.shadow)
        }
        #expect(hub.current.flags.first?.stage == .live)
        // A read begun after it applies as usual.
        hub.applyStored { Self.stored(.canary) }
        #expect(hub.current.flags.first?.stage == .canary)
    }
}
