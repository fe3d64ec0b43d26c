//! A small deterministic generator: for randomized tests (a seed gives the
//! same history every run, so a failure can be replayed), and for the
//! jitter of reconnection waits.

/// Xorshift64; the seed must not be zero.
#[derive(Clone, Debug)]
pub struct Random(pub u64);

impl Random {
    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}
