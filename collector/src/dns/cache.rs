//! The enrichment's own answer cache: entries live as long as the
//! answer's TTL (clamped), bounded in size.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Shortest time an answer is cached, whatever its TTL says.
pub const MIN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Longest time an answer is cached, whatever its TTL says.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(86_400);

/// How often a full cache sweeps out all expired entries before evicting
/// the oldest ones.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.clamp(MIN_CACHE_TTL, MAX_CACHE_TTL)
}

/// A map whose entries expire, bounded in size: when full it first drops
/// expired entries (at most once per [`SWEEP_INTERVAL`]), then the oldest
/// inserted ones.
pub(super) struct TtlCache<K, V> {
    map: HashMap<K, Slot<V>>,
    order: BTreeMap<u64, K>,
    next_seq: u64,
    capacity: usize,
    last_sweep: Option<Instant>,
}

pub(super) struct Slot<V> {
    value: V,
    expires: Instant,
    seq: u64,
}

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            last_sweep: None,
        }
    }

    /// The live value for `key`; an expired entry is removed.
    pub(super) fn get(&mut self, key: &K, now: Instant) -> Option<&V> {
        let expired = match self.map.get(key) {
            None => return None,
            Some(slot) => slot.expires <= now,
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get(key).map(|slot| &slot.value)
    }

    pub(super) fn contains_live(&self, key: &K, now: Instant) -> bool {
        self.map.get(key).is_some_and(|slot| slot.expires > now)
    }

    pub(super) fn remove(&mut self, key: &K) {
        if let Some(slot) = self.map.remove(key) {
            self.order.remove(&slot.seq);
        }
    }

    pub(super) fn insert(&mut self, key: K, value: V, expires: Instant, now: Instant) {
        self.remove(&key);
        if self.map.len() >= self.capacity {
            self.make_room(now);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.map.insert(
            key,
            Slot {
                value,
                expires,
                seq,
            },
        );
    }

    pub(super) fn make_room(&mut self, now: Instant) {
        let sweep_due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_INTERVAL);
        if sweep_due {
            self.last_sweep = Some(now);
            let order = &mut self.order;
            self.map.retain(|_, slot| {
                let live = slot.expires > now;
                if !live {
                    order.remove(&slot.seq);
                }
                live
            });
        }
        while self.map.len() >= self.capacity {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&key);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}
