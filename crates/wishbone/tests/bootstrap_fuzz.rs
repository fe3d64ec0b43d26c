//! Thousands of mutated bootstrap files: validation reports problems and
//! never panics.

use std::path::Path;

use wishbone::builtin_set;

const SEEDS: [&str; 2] = [
    include_str!("../../../bootstrap/scenario_1.yaml"),
    include_str!("../../../bootstrap/default.yaml"),
];

/// xorshift: reproducible mutations without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, limit: usize) -> usize {
        (self.next() % limit.max(1) as u64) as usize
    }
}

const PIECES: [&str; 14] = [
    ":", "-", " ", "\n", "->", ".", "{", "}", "[", "]", "'", "\"", "\t", "port: -1",
];

fn mutate(text: &str, random: &mut Random) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + random.below(4) {
        let at = random.below(bytes.len());
        match random.below(5) {
            0 if !bytes.is_empty() => {
                bytes.remove(at.min(bytes.len() - 1));
            }
            1 => bytes.insert(at, random.next() as u8),
            2 => {
                let piece = PIECES[random.below(PIECES.len())];
                bytes.splice(at..at, piece.bytes());
            }
            3 => {
                let end = (at + random.below(40)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_bootstraps_never_panic() {
    let modules = builtin_set();
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..6000 {
        let text = mutate(SEEDS[round % SEEDS.len()], &mut random);
        match wishbone_bootstrap::validate(Path::new("fuzz.yaml"), &text, &modules) {
            Ok(_) => valid += 1,
            Err(error) => {
                assert!(!error.problems().is_empty());
                invalid += 1;
            }
        }
    }
    assert!(
        invalid > 1000 && valid > 10,
        "the mutations should produce both: {valid} valid, {invalid} invalid"
    );
}
