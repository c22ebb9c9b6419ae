// A session's prepared reads: names, PREPAREs that fail, the limit, and deallocation.
import SwitchyardRouting
import Testing

@Suite("Prepared reads of a session")
struct PreparedReadsTests {
    @Test("a read is prepared once, then executed; a failed PREPARE is tried again under a new name")
    func prepareThenExecute() {
        var reads = PreparedReads(session: "t_1")
        #expect(reads.plan(for: 7, canPrepare: true) == .prepare(name: "switchyard_rt_1_1", deallocating: nil))
        // One PREPARE at a time.
        #expect(reads.plan(for: 8, canPrepare: true) == nil)
        reads.prepareEnded(succeeded: false)
        #expect(reads.plan(for: 7, canPrepare: false) == nil)
        #expect(reads.plan(for: 7, canPrepare: true) == .prepare(name: "switchyard_rt_1_2", deallocating: nil))
        reads.prepareEnded(succeeded: true)
        #expect(reads.plan(for: 7, canPrepare: false) == .execute(name: "switchyard_rt_1_2", head: Array("EXECUTE switchyard_rt_1_2".utf8)))
        reads.discard(7)
        #expect(reads.plan(for: 7, canPrepare: true) == .prepare(name: "switchyard_rt_1_3", deallocating: nil))
        reads.prepareEnded(succeeded: true)
        reads.forgetAll()
        #expect(reads.count == 0)
        #expect(reads.plan(for: 7, canPrepare: true) == .prepare(name: "switchyard_rt_1_4", deallocating: nil))
        reads.prepareEnded(succeeded: true)
        var other = PreparedReads(session: "t_2")
        #expect(other.plan(for: 7, canPrepare: true) == .prepare(name: "switchyard_rt_2_1", deallocating: nil),
                "another session's names are its own")
    }

    @Test("a session whose statements keep disappearing stops preparing")
    func missing() {
        var reads = PreparedReads(session: "t_1")
        for _ in 1..<PreparedReads.missingLimit { reads.noteMissing() }
        #expect(!reads.isOff)
        #expect(reads.plan(for: 1, canPrepare: true) != nil)
        reads.prepareEnded(succeeded: false)
        reads.noteMissing()
        #expect(reads.isOff)
        #expect(reads.plan(for: 1, canPrepare: true) == nil)
        // A read whose EXECUTE was refused is still prepared and run, once more.
        #expect(reads.plan(for: 1, canPrepare: true, evenIfOff: true) != nil)
    }

    @Test("beyond the limit the oldest is deallocated in the same Query")
    func limit() {
        var reads = PreparedReads(session: "t_1", limit: 2)
        for id in 1...2 {
            _ = reads.plan(for: id, canPrepare: true)
            reads.prepareEnded(succeeded: true)
        }
        #expect(reads.plan(for: 3, canPrepare: true) == .prepare(name: "switchyard_rt_1_3", deallocating: "switchyard_rt_1_1"))
        reads.prepareEnded(succeeded: true)
        #expect(reads.count == 2)
        #expect(reads.plan(for: 1, canPrepare: false) == nil)
        #expect(reads.plan(for: 2, canPrepare: false) == .execute(name: "switchyard_rt_1_2", head: Array("EXECUTE switchyard_rt_1_2".utf8)))
    }
}
