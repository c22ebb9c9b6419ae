// Sticky canary cohorts: a cohort key hashes to one of 10,000 buckets, the same on every instance.

/// Assigns cohort keys to buckets. The hash is a fixed function of the flag's salt
/// and the key (no per-process seed), so every Switchyard instance, before and after
/// a restart, puts a key in the same bucket. A key is in the canary when its bucket
/// is below the flag's percentage in basis points, so raising the percentage only
/// adds keys and lowering it only removes them.
public enum CohortBucketing {
    public static let bucketCount = 10_000

    /// The bucket of `key` under `salt`, in 0..<10,000.
    public static func bucket(salt: String, key: String) -> Int {
        bucket(saltState: saltState(salt), key: key)
    }

    /// The hash state after a salt and its separator: what ``bucket(saltState:key:)`` starts from,
    /// worked out once per flag rather than once per statement.
    public static func saltState(_ salt: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in salt.utf8 { mix(&hash, b) }
        mix(&hash, 0)
        return hash
    }

    @inline(__always) private static func mix(_ hash: inout UInt64, _ byte: UInt8) {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }

    /// The bucket of `key` under the salt whose ``saltState(_:)`` is `saltState`.
    public static func bucket(saltState: UInt64, key: String) -> Int {
        // FNV-1a over "salt" 0x00 "key", then a 64-bit finalizer so nearby keys spread evenly.
        var hash = saltState
        var key = key
        key.withUTF8 { bytes in
            for b in bytes { mix(&hash, b) }
        }
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash = hash &* 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return Int(hash % UInt64(bucketCount))
    }

    /// Whether a key in `bucket` is in a canary of `percentBasisPoints` (0...10,000 = 0...100.00 %).
    public static func isInCanary(bucket: Int, percentBasisPoints: Int) -> Bool {
        bucket < percentBasisPoints
    }

    public static func isInCanary(salt: String, key: String, percentBasisPoints: Int) -> Bool {
        isInCanary(bucket: bucket(salt: salt, key: key), percentBasisPoints: percentBasisPoints)
    }
}
