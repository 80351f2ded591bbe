//! Hashing shared by routing and the state machines: stable across runs and platforms.

/// The murmur3 64-bit finalizer: a bijective mix whose output bits all depend on every
/// input bit. The engine routes every 64-bit key to its shard through it.
///
/// ```
/// use mabeam_shards::hash::mix64;
/// assert_ne!(mix64(1), mix64(2));
/// assert_eq!(mix64(0), 0); // a bijection that fixes 0
/// ```
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
