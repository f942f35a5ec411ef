//! The notifier's repository: the `outbox` tree (entries are written by
//! the orders shards with the change they announce, read and removed here).

use super::*;
use crate::storage::{Committing, OutboxRepo};

/// The notifier's outbox.
#[derive(Clone)]
pub struct SledOutbox(pub(super) SledStore);

impl OutboxRepo for SledOutbox {
    /// Up to `limit` outbox entries, oldest first.
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        let mut out = Vec::new();
        for item in self.0.inner.outbox.iter().values().take(limit) {
            out.push(load(&item?, "outbox")?);
        }
        Ok(out)
    }

    /// How many messages wait in the outbox.
    fn outbox_len(&self) -> usize {
        self.0.inner.outbox.len()
    }

    /// Rewrites an outbox entry (attempts, next try).
    fn put_outbox(&self, entry: &OutboxEntry) -> Result<(), StorageError> {
        self.0
            .inner
            .outbox
            .insert(entry.id.to_be_bytes(), store(entry)?)?;
        Ok(())
    }

    /// Removes a delivered or dropped entry.
    fn remove_outbox(&self, id: u64) -> Result<(), StorageError> {
        self.0.inner.outbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing {
        let store = self.0.clone();
        Box::pin(async move { store.commit().await })
    }
}
