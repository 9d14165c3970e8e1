//! Deterministic mangling of reader fixtures, shared by the input tests:
//! every few truncations and random few-character edits of a text, each
//! handed to a reader that must not panic.

/// xorshift64*, deterministic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Calls `f` on every `step`-th truncation of `text`, then on `rounds`
/// copies with 1 to `max_edits` characters replaced, deleted or inserted
/// (taken from `alphabet`).
pub fn mangle(
    text: &str,
    step: usize,
    rounds: usize,
    max_edits: usize,
    alphabet: &[char],
    rng: &mut Rng,
    f: &mut dyn FnMut(&str),
) {
    let chars: Vec<char> = text.chars().collect();
    for cut in (0..chars.len()).step_by(step.max(1)) {
        let s: String = chars.iter().take(cut).collect();
        f(&s);
    }
    for _ in 0..rounds {
        let mut c = chars.clone();
        for _ in 0..1 + rng.below(max_edits) {
            let at = rng.below(c.len());
            let ch = alphabet[rng.below(alphabet.len())];
            match rng.below(3) {
                0 if at < c.len() => c[at] = ch,
                1 if at < c.len() => {
                    c.remove(at);
                }
                _ => c.insert(at.min(c.len()), ch),
            }
        }
        let s: String = c.into_iter().collect();
        f(&s);
    }
}
