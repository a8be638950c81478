//! A small seeded random number generator: SplitMix64 seeds a xorshift64* stream.
//!
//! Every run with the same seed draws the same numbers in the same order, so a seed names a
//! capture. Integer draws are platform-independent; exponential gaps go through `f64::ln`.

/// One step of SplitMix64: a well-mixed 64-bit value from a counter.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64* (Vigna), seeded through SplitMix64 so that nearby seeds give unrelated streams.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// The stream for `seed`; `stream` separates independent uses of one seed (hosts,
    /// arrivals, sequence numbers ...), so adding draws to one leaves the others unchanged.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut mix = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut state = splitmix64(&mut mix);
        if state == 0 {
            // xorshift's only fixed point.
            state = 0x2545_F491_4F6C_DD1D;
        }
        Rng { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias worth mentioning (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + self.below(span) as i64
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    pub fn unit_open0(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with the given rate (per unit): gaps of a Poisson process.
    pub fn exponential(&mut self, rate: f64) -> f64 {
        -self.unit_open0().ln() / rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7, 2);
                move |_| r.next_u64()
            })
            .collect();
        let d: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(8, 1);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn ranges_are_respected() {
        let mut r = Rng::new(1, 0);
        for _ in 0..10_000 {
            assert!(r.below(3) < 3);
            let v = r.between(-2, 2);
            assert!((-2..=2).contains(&v));
            let u = r.unit_open0();
            assert!(u > 0.0 && u <= 1.0);
        }
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn exponential_mean_is_one_over_rate() {
        let mut r = Rng::new(3, 0);
        let n = 200_000;
        let mean = (0..n).map(|_| r.exponential(4.0)).sum::<f64>() / f64::from(n);
        assert!((mean - 0.25).abs() < 0.005, "mean {mean}");
    }
}
