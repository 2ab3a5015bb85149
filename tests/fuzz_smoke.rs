//! The fuzz targets' properties (fuzz/props.rs) on stable: a short,
//! deterministic mutation run over the seed corpora in fuzz/corpus/. It is
//! no substitute for coverage-guided `cargo fuzz run` (nightly, see
//! docs/reliability.md), but it runs in CI on every change.
//!
//! `FERRY_FUZZ_ITERATIONS` (default 5000 per target) and `FERRY_FUZZ_SEED`
//! make longer or different runs.

#[path = "../fuzz/props.rs"]
mod props;

use std::path::Path;

/// xorshift64: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to YAML and TOML, so mutations reach the parsers' edges.
const INTERESTING: &[&[u8]] = &[
    b":",
    b"- ",
    b"\t",
    b"\n",
    b"\"",
    b"'",
    b"[",
    b"]",
    b"{",
    b"}",
    b"=",
    b"#",
    b"&a",
    b"*a",
    b"!!binary ",
    b"---\n",
    b"0.0",
    b"1e400",
    b"-0",
    b"\\u0000",
    b"\xff",
    b"\xc3\xbc",
    b"arn:aws:iam::",
    b"role/",
    b"[env.",
    b"\"\"\"",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            2 => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                input.splice(at..at, token.iter().copied());
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..to].iter().copied());
            }
            4 if !input.is_empty() => {
                let from = rng.below(input.len());
                let chunk: Vec<u8> = input[from..(from + rng.below(32)).min(input.len())].to_vec();
                input.splice(at..at, chunk);
            }
            _ => input.insert(at, rng.next() as u8),
        }
    }
}

fn smoke(corpus: &str, property: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(corpus);
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    let iterations: usize = std::env::var("FERRY_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let seed: u64 = std::env::var("FERRY_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_f022);
    let mut rng = Rng(seed | 1);
    for seed_input in &seeds {
        property(seed_input);
    }
    for i in 0..iterations {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &seeds, &mut input);
        let result = std::panic::catch_unwind(|| property(&input));
        if result.is_err() {
            let path = std::env::temp_dir().join(format!("ferry-fuzz-{corpus}-crash-{i}"));
            std::fs::write(&path, &input).unwrap();
            panic!("{corpus}: input {i} (seed {seed}) broke a property; saved to {}", path.display());
        }
    }
}

#[test]
fn appspec_checks_survive_mutated_appspecs() {
    smoke("appspec", props::appspec);
}

#[test]
fn config_parser_survives_mutated_config_files() {
    smoke("config", props::config);
}
