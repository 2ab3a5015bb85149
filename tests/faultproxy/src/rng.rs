//! A tiny seeded generator: runs must be reproducible, and a test proxy
//! does not need cryptographic randomness.

/// xorshift64*.
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (0 is replaced: xorshift must not start at 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next value in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_the_same_sequence_in_range() {
        let (mut a, mut b) = (XorShift::new(7), XorShift::new(7));
        for _ in 0..1000 {
            let x = a.next_f64();
            assert_eq!(x, b.next_f64());
            assert!((0.0..1.0).contains(&x));
        }
    }

    #[test]
    fn a_tenth_is_roughly_a_tenth() {
        let mut r = XorShift::new(42);
        let hits = (0..10_000).filter(|_| r.next_f64() < 0.1).count();
        assert!((800..1200).contains(&hits), "{hits}");
    }
}
