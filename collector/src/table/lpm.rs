//! The longest-prefix-match structure of one address family.
//!
//! Prefixes are kept in insertion order with a hash index for exact
//! matches. For longest-prefix matches the nested prefixes are flattened,
//! once, into disjoint address ranges: a sorted array of range starts, each
//! with the prefix that is the longest match for every address of its range
//! (or none) and that prefix's primary ASN. A lookup picks the slice of
//! that array that can hold the address through an index on the address's
//! top bits (up to 20 of them, about one bucket per range), then
//! binary-searches the slice: a few comparisons, one or two cache misses on
//! a full table. The flattened form is built on the first lookup after a
//! change (or by `freeze`) and dropped when a prefix is added or replaced.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::OnceLock;

use super::Origin;

/// Most bits of the first-level index: 2^20 buckets, 4 MiB. With it a
/// full IPv4 table leaves at most a few ranges in a bucket, where a 16-bit
/// index left hundreds in the dense ones (a /16 of /24s), whose binary
/// searches cost several cache misses each. Smaller tables get a smaller
/// index: about one bucket per range, at least 2^8.
const MAX_INDEX_BITS: u32 = 20;
const MIN_INDEX_BITS: u32 = 8;

/// An address as an unsigned integer: `u32` for IPv4, `u128` for IPv6.
pub(crate) trait Key: Copy + Ord + Hash + std::fmt::Debug + Default {
    /// Address width in bits.
    const BITS: u8;
    /// The host part of a prefix of length `len` (all ones below it).
    fn host_mask(len: u8) -> Self;
    fn and(self, other: Self) -> Self;
    fn or(self, other: Self) -> Self;
    fn not(self) -> Self;
    /// `self + 1`, `None` past the all-ones address.
    fn succ(self) -> Option<Self>;
    /// `self >> shift`, for `shift` less than `BITS`.
    fn top(self, shift: u32) -> usize;
    /// `h << shift`.
    fn from_top(h: usize, shift: u32) -> Self;
    /// Number of trailing zero bits (`BITS` for zero).
    fn trailing_zeros(self) -> u32;
    /// Number of leading zero bits (`BITS` for zero).
    fn leading_zeros(self) -> u32;
    fn wrapping_sub(self, other: Self) -> Self;
    fn wrapping_add(self, other: Self) -> Self;
    /// `1 << bits`, for `bits < BITS`.
    fn pow2(bits: u32) -> Self;
}

macro_rules! impl_key {
    ($t:ty, $bits:expr) => {
        impl Key for $t {
            const BITS: u8 = $bits;
            fn host_mask(len: u8) -> Self {
                <$t>::MAX.checked_shr(u32::from(len)).unwrap_or(0)
            }
            fn and(self, other: Self) -> Self {
                self & other
            }
            fn or(self, other: Self) -> Self {
                self | other
            }
            fn not(self) -> Self {
                !self
            }
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }
            fn top(self, shift: u32) -> usize {
                (self >> shift) as usize
            }
            fn from_top(h: usize, shift: u32) -> Self {
                (h as $t) << shift
            }
            fn trailing_zeros(self) -> u32 {
                <$t>::trailing_zeros(self)
            }
            fn leading_zeros(self) -> u32 {
                <$t>::leading_zeros(self)
            }
            fn wrapping_sub(self, other: Self) -> Self {
                <$t>::wrapping_sub(self, other)
            }
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
            fn pow2(bits: u32) -> Self {
                (1 as $t) << bits
            }
        }
    };
}

impl_key!(u32, 32);
impl_key!(u128, 128);

/// The network address of `addr/len` (host bits cleared).
pub(crate) fn network<K: Key>(addr: K, len: u8) -> K {
    addr.and(K::host_mask(len).not())
}

/// The last address of `addr/len`.
fn last<K: Key>(addr: K, len: u8) -> K {
    addr.or(K::host_mask(len))
}

/// The fewest prefixes that cover `start..=end` exactly, in address order.
/// The caller checks `start <= end`.
pub(crate) fn range_to_prefixes<K: Key>(start: K, end: K) -> Vec<(K, u8)> {
    let mut out = Vec::new();
    let mut at = start;
    loop {
        // The largest block that is aligned at `at` and ends by `end`.
        let span = end.wrapping_sub(at); // block size - 1 may be at most this
        let fit = match span.succ() {
            None => u32::from(K::BITS),                            // the whole space
            Some(n) => u32::from(K::BITS) - 1 - n.leading_zeros(), // floor(log2(span + 1))
        };
        let bits = at.trailing_zeros().min(fit);
        out.push((at, K::BITS - bits as u8));
        if bits >= u32::from(K::BITS) {
            break;
        }
        let next = at.wrapping_add(K::pow2(bits));
        if next <= at || next > end {
            break;
        }
        at = next;
    }
    out
}

/// FxHash-style hasher: the keys are addresses from files the operator
/// chose, so speed matters more than resistance to crafted collisions.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

const NONE: u32 = u32::MAX;

/// A prefix and its origin, together so that a lookup touches one place.
#[derive(Clone, Debug)]
struct Entry<K> {
    origin: Origin,
    addr: K,
    len: u8,
}

/// One range of the flattened form.
#[derive(Clone, Copy, Debug)]
struct Bound<K> {
    /// The first address of the range; it ends where the next one starts.
    start: K,
    /// The entry that is the longest match of the range, or `NONE`.
    slot: u32,
    /// That entry's primary ASN, so that an ASN lookup reads nothing else.
    asn: u32,
}

/// The flattened, disjoint-range form of a family's prefixes.
#[derive(Clone, Debug)]
struct Ranges<K> {
    /// Starts ascending, the first 0.
    bounds: Vec<Bound<K>>,
    /// `buckets[h]`: index of the range holding the first address `a`
    /// with `a >> shift == h`; one more at the end: the last range.
    buckets: Vec<u32>,
    /// Address width less the index width.
    shift: u32,
}

/// The prefixes of one address family.
#[derive(Clone, Debug, Default)]
pub(crate) struct Family<K: Key> {
    /// In insertion order.
    entries: Vec<Entry<K>>,
    /// Where each (network address, length) is in `entries`.
    position: HashMap<(K, u8), u32, BuildHasherDefault<FastHasher>>,
    ranges: OnceLock<Ranges<K>>,
}

impl<K: Key> Family<K> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds or replaces `addr/len` (host bits are cleared); returns the
    /// origin it replaced. `len` is at most `K::BITS` (the caller checks).
    pub(crate) fn insert(&mut self, addr: K, len: u8, origin: Origin) -> Option<Origin> {
        let addr = network(addr, len);
        // Even a changed origin changes the flattened form (it holds the
        // primary ASNs).
        self.ranges.take();
        if let Some(&i) = self.position.get(&(addr, len)) {
            let entry = &mut self.entries[i as usize];
            return Some(std::mem::replace(&mut entry.origin, origin));
        }
        let slot = u32::try_from(self.entries.len())
            .ok()
            .filter(|&s| s != NONE)
            .expect("a prefix table holds fewer than 2^32 - 1 prefixes per family");
        self.entries.push(Entry { origin, addr, len });
        self.position.insert((addr, len), slot);
        None
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.position.reserve(additional);
    }

    /// The origin of exactly `addr/len`.
    pub(crate) fn get(&self, addr: K, len: u8) -> Option<&Origin> {
        let &i = self.position.get(&(network(addr, len), len))?;
        self.entries.get(i as usize).map(|e| &e.origin)
    }

    /// The range holding `addr`.
    #[inline]
    fn range(&self, addr: K) -> Bound<K> {
        let ranges = self.ranges.get_or_init(|| self.flatten());
        let h = addr.top(ranges.shift);
        let lo = ranges.buckets[h] as usize;
        let hi = ranges.buckets[h + 1] as usize;
        let candidates = &ranges.bounds[lo..=hi];
        // candidates[0].start <= addr by construction, so the count is >= 1.
        let at = candidates
            .partition_point(|b| b.start <= addr)
            .saturating_sub(1);
        candidates[at]
    }

    /// The longest prefix holding `addr` and its origin.
    #[inline]
    pub(crate) fn lookup(&self, addr: K) -> Option<((K, u8), &Origin)> {
        let slot = self.range(addr).slot;
        if slot == NONE {
            return None;
        }
        let entry = &self.entries[slot as usize];
        Some(((entry.addr, entry.len), &entry.origin))
    }

    /// The primary ASN of the longest prefix holding `addr`.
    #[inline]
    pub(crate) fn lookup_asn(&self, addr: K) -> Option<u32> {
        let range = self.range(addr);
        (range.slot != NONE).then_some(range.asn)
    }

    /// Builds the flattened ranges now rather than at the first lookup.
    pub(crate) fn freeze(&self) {
        self.ranges.get_or_init(|| self.flatten());
    }

    /// The number of disjoint ranges of the flattened form.
    pub(crate) fn range_count(&self) -> usize {
        self.ranges.get_or_init(|| self.flatten()).bounds.len()
    }

    /// Entries in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ((K, u8), &Origin)> + '_ {
        self.entries.iter().map(|e| ((e.addr, e.len), &e.origin))
    }

    /// Moves `other`'s prefixes in, replacing equal ones.
    pub(crate) fn merge(&mut self, other: Family<K>) {
        self.reserve(other.entries.len());
        for e in other.entries {
            self.insert(e.addr, e.len, e.origin);
        }
    }

    fn flatten(&self) -> Ranges<K> {
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        // By start address, then shorter first: a prefix comes before the
        // prefixes nested in it.
        order.sort_unstable_by_key(|&i| {
            let e = &self.entries[i as usize];
            (e.addr, e.len)
        });

        let mut bounds: Vec<Bound<K>> = Vec::with_capacity(2 * order.len() + 1);
        bounds.push(Bound {
            start: K::default(),
            slot: NONE,
            asn: 0,
        });
        // A range starting at `start` is matched by `slot`; a later range
        // with the same start replaces it, and a range with the same slot
        // as the one before it is no boundary at all.
        let entries = &self.entries;
        let mut emit = |start: K, slot: u32| {
            if bounds.last().map(|b| b.start) == Some(start) {
                bounds.pop();
            }
            if bounds.last().map(|b| b.slot) != Some(slot) {
                let asn = entries.get(slot as usize).map_or(0, |e| e.origin.primary());
                bounds.push(Bound { start, slot, asn });
            }
        };
        // The chain of prefixes holding the current position, innermost
        // last: (last address, slot).
        let mut open: Vec<(K, u32)> = Vec::with_capacity(K::BITS as usize + 1);
        for &slot in &order {
            let Entry {
                addr: start, len, ..
            } = self.entries[slot as usize];
            while let Some(&(end, _)) = open.last() {
                if end >= start {
                    break;
                }
                open.pop();
                if let Some(after) = end.succ() {
                    emit(after, open.last().map_or(NONE, |&(_, s)| s));
                }
            }
            emit(start, slot);
            open.push((last(start, len), slot));
        }
        while let Some((end, _)) = open.pop() {
            if let Some(after) = end.succ() {
                emit(after, open.last().map_or(NONE, |&(_, s)| s));
            }
        }
        bounds.shrink_to_fit();

        let bits =
            (usize::BITS - bounds.len().leading_zeros()).clamp(MIN_INDEX_BITS, MAX_INDEX_BITS);
        let shift = u32::from(K::BITS) - bits;
        let mut buckets = Vec::with_capacity((1 << bits) + 1);
        // `emit` never leaves `bounds` empty: the first range starts at 0.
        let mut at = 0usize;
        for h in 0..1usize << bits {
            let first = K::from_top(h, shift);
            while at + 1 < bounds.len() && bounds[at + 1].start <= first {
                at += 1;
            }
            buckets.push(at as u32);
        }
        buckets.push(bounds.len().saturating_sub(1) as u32);
        Ranges {
            bounds,
            buckets,
            shift,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_to_prefixes_covers_exactly() {
        assert_eq!(range_to_prefixes(0u32, u32::MAX), vec![(0, 0)]);
        assert_eq!(range_to_prefixes(5u32, 5), vec![(5, 32)]);
        assert_eq!(
            range_to_prefixes(0x0a00_0001u32, 0x0a00_0006),
            vec![
                (0x0a00_0001, 32),
                (0x0a00_0002, 31),
                (0x0a00_0004, 31),
                (0x0a00_0006, 32)
            ]
        );
        assert_eq!(range_to_prefixes(u32::MAX, u32::MAX), vec![(u32::MAX, 32)]);
        assert_eq!(
            range_to_prefixes(0x8000_0000u32, u32::MAX),
            vec![(0x8000_0000, 1)]
        );
        assert_eq!(range_to_prefixes(0u128, u128::MAX), vec![(0, 0)]);
        assert_eq!(range_to_prefixes(1u128, u128::MAX).len(), 128);
    }

    /// Pseudo-random numbers for the cross-check, deterministic.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn flattened_lookup_agrees_with_brute_force() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..40 {
            let mut fam: Family<u32> = Family::default();
            let mut all: Vec<(u32, u8, u32)> = Vec::new();
            // Prefixes clustered in a few /8s so that they nest.
            for i in 0..(50 + round * 20) {
                let r = xorshift(&mut rng);
                let base = [0x0a00_0000u32, 0xc0a8_0000, 0xffff_ff00, 0][(r % 4) as usize];
                let addr = base ^ ((r >> 8) as u32 & 0x00ff_ffff);
                let len = ((r >> 40) % 33) as u8;
                let asn = i as u32 + 1;
                fam.insert(addr, len, Origin::Asn(asn));
                let key = network(addr, len);
                all.retain(|&(a, l, _)| !(a == key && l == len));
                all.push((key, len, asn));
            }
            for probe in 0..2000u32 {
                let r = xorshift(&mut rng);
                let addr = match probe % 3 {
                    0 => r as u32,
                    1 => all[(r as usize >> 3) % all.len()]
                        .0
                        .wrapping_add((r >> 40) as u32 % 3),
                    _ => {
                        let (a, l, _) = all[(r as usize >> 3) % all.len()];
                        last(a, l).wrapping_add((r >> 40) as u32 % 3)
                    }
                };
                let want = all
                    .iter()
                    .filter(|&&(a, l, _)| network(addr, l) == a)
                    .max_by_key(|&&(_, l, _)| l)
                    .map(|&(a, l, asn)| ((a, l), asn));
                let got = fam.lookup(addr).map(|(k, o)| (k, o.primary()));
                assert_eq!(got, want, "round {round}, address {addr:#010x}");
                assert_eq!(fam.lookup_asn(addr), want.map(|(_, asn)| asn));
            }
        }
    }
}
