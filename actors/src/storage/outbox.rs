//! The notifier's storage: messages the orders shards left to send.

use crate::domain::OutboxEntry;

use super::{Committing, StorageError};

/// The notifier's storage.
pub trait OutboxRepo: Send + Sync {
    /// Up to `limit` outbox entries, oldest first.
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError>;

    /// How many messages wait in the outbox.
    fn outbox_len(&self) -> usize;

    /// Rewrites an outbox entry (attempts, next try).
    fn put_outbox(&self, entry: &OutboxEntry) -> Result<(), StorageError>;

    /// Removes a delivered or dropped entry.
    fn remove_outbox(&self, id: u64) -> Result<(), StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
