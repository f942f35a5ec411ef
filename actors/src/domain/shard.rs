//! Which orders shard owns what, and the application's increasing ids:
//! both values a storage engine is given, never works out for itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{stable_hash, OpenId, OrderId};

/// One of `count` orders shards: it owns the customers whose prefix
/// hashes to `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard's number, below `count`.
    pub index: usize,
    /// How many shards there are.
    pub count: usize,
}

impl Shard {
    /// The shard that owns orders whose customer prefix is `prefix`.
    fn of_prefix(prefix: &str, count: usize) -> Self {
        let count = count.max(1);
        Self {
            index: (stable_hash(prefix) % count as u64) as usize,
            count,
        }
    }

    /// Which of `count` shards owns `id`.
    pub fn of_order(id: &OrderId, count: usize) -> Self {
        Self::of_prefix(id.shard_key(), count)
    }

    /// Which of `count` shards owns `customer`'s orders (the same shard as
    /// [`Self::of_order`] gives for any id generated for them).
    pub fn of_customer(customer: &OpenId, count: usize) -> Self {
        Self::of_prefix(&OrderId::customer_prefix(customer), count)
    }

    /// True when this shard owns `id`.
    pub fn owns(self, id: &OrderId) -> bool {
        Self::of_order(id, self.count) == self
    }

    /// True when this shard owns `customer`'s orders.
    pub fn owns_customer(self, customer: &OpenId) -> bool {
        Self::of_customer(customer, self.count) == self
    }
}

/// Bits of an id below its millisecond: ids made in one millisecond.
const PER_MS_BITS: u32 = 16;

/// Increasing ids for the ledger's inbox, the notifier's outbox and the
/// statements' lines, shared by every owner: the time in ms in the high
/// bits, so ids go on increasing across restarts, and never below the
/// last one made (or the mark the store was opened with), so a clock
/// that steps back does not reorder them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sequence(Arc<AtomicU64>);

impl Sequence {
    /// A sequence whose ids are all above `mark` (the highest id a store
    /// holds).
    pub fn after(mark: u64) -> Self {
        Self(Arc::new(AtomicU64::new(mark)))
    }

    /// The next id at `now_unix_ms`.
    pub fn next(&self, now_unix_ms: i64) -> u64 {
        let floor = u64::try_from(now_unix_ms).unwrap_or(0) << PER_MS_BITS;
        let previous = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(floor.max(last + 1))
            })
            .unwrap_or(floor);
        floor.max(previous + 1)
    }

    /// The highest id made so far (what a store keeps as its mark).
    pub fn last(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_within_a_millisecond_and_when_the_clock_steps_back() {
        let seq = Sequence::after(0);
        let a = seq.next(1_000);
        let b = seq.next(1_000);
        let c = seq.next(999);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a, 1_000 << PER_MS_BITS);
        assert_eq!(seq.last(), c);
        let later = seq.next(2_000);
        assert_eq!(later, 2_000 << PER_MS_BITS);
    }

    #[test]
    fn a_sequence_opened_on_a_store_goes_on_above_its_mark() {
        let seq = Sequence::after(5_000 << PER_MS_BITS);
        assert_eq!(seq.next(10), (5_000 << PER_MS_BITS) + 1);
    }

    #[test]
    fn a_customer_and_every_id_made_for_them_share_a_shard() {
        let customer = OpenId::parse("oSHARD").expect("openid");
        let at = time::OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time");
        for count in 1..9 {
            let shard = Shard::of_customer(&customer, count);
            assert!(shard.index < count);
            for n in 0..5 {
                let id = OrderId::generate(&customer, at + time::Duration::seconds(n));
                assert_eq!(Shard::of_order(&id, count), shard);
                assert!(shard.owns(&id) && shard.owns_customer(&customer));
            }
        }
    }
}
