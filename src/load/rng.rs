//! A small deterministic pseudo-random generator (SplitMix64), so a run's operation
//! sequence depends only on `--seed` and the client index, with no `rand` dependency.

/// SplitMix64: a 64-bit state advanced by a Weyl constant, each output a mixed copy of
/// it. Not cryptographic; statistically good enough to pick operations and keys.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The generator for client `client` of a run seeded with `seed`: the two are mixed
    /// so that neighbouring clients (and neighbouring seeds) get unrelated sequences.
    pub fn for_client(seed: u64, client: usize) -> Self {
        let mut base = SplitMix64 { state: seed };
        let salt = base.next_u64();
        SplitMix64 {
            state: salt ^ (client as u64).wrapping_mul(0xd1b5_4a32_d192_ed03),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` at least 1), by multiply-shift: no modulo bias worth
    /// mentioning for the small `n` used here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_client_give_the_same_sequence() {
        let mut a = SplitMix64::for_client(7, 3);
        let mut b = SplitMix64::for_client(7, 3);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn clients_and_seeds_differ() {
        let first = |seed, client| SplitMix64::for_client(seed, client).next_u64();
        assert_ne!(first(7, 0), first(7, 1));
        assert_ne!(first(7, 0), first(8, 0));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = SplitMix64::for_client(1, 0);
        let mut seen = [0u32; 16];
        for _ in 0..16_000 {
            let x = r.below(16);
            assert!(x < 16);
            seen[x as usize] += 1;
        }
        // Each value expected 1000 times; a fair generator stays well inside 800..1200.
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }
}
