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

/// Seeded draws keyed by request, not by arrival order: the `n`th draw for
/// one rule and one request key (e.g. part 3 of an upload) is the same
/// whichever order concurrent requests reach the proxy in, so a fixed seed
/// replays a run exactly even with parts in flight side by side.
pub struct Draws {
    seed: u64,
    seen: std::collections::HashMap<(usize, String), u64>,
}

impl Draws {
    /// Draws for `seed`.
    pub fn new(seed: u64) -> Draws {
        Draws { seed, seen: std::collections::HashMap::new() }
    }

    /// The next value in `[0, 1)` for `rule` and the request `key`.
    pub fn next(&mut self, rule: usize, key: &str) -> f64 {
        let n = self.seen.entry((rule, key.to_string())).or_default();
        *n += 1;
        // FNV-1a over (seed, rule, key, n), then two xorshift steps to mix.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes =
            self.seed.to_le_bytes().into_iter().chain((rule as u64).to_le_bytes()).chain(key.bytes()).chain(n.to_le_bytes());
        for b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut x = XorShift::new(h);
        x.next_f64();
        x.next_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_depend_on_the_request_not_on_the_order_requests_arrive_in() {
        let keys = ["PUT /b/k?partNumber=1", "PUT /b/k?partNumber=2", "PUT /b/k?partNumber=3"];
        let (mut a, mut b) = (Draws::new(7), Draws::new(7));
        let forward: Vec<f64> = keys.iter().chain(keys.iter()).map(|k| a.next(0, k)).collect();
        let mut backward: Vec<f64> = keys.iter().rev().chain(keys.iter().rev()).map(|k| b.next(0, k)).collect();
        // Same request, same attempt: same draw, in whatever order they came.
        backward[..3].reverse();
        backward[3..].reverse();
        assert_eq!(forward, backward);
        assert_ne!(forward[0], forward[3], "a retry of the same request draws anew");
        assert_ne!(Draws::new(8).next(0, keys[0]), forward[0], "another seed, another run");
    }

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
