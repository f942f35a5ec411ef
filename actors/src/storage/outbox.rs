//! The notifier's repository: the `outbox` tree (entries are written by
//! the orders shards with the change they announce, read and removed here).

use super::*;

/// The notifier's outbox.
#[derive(Clone)]
pub struct OutboxRepo(pub(super) Store);

impl OutboxRepo {
    /// Up to `limit` outbox entries, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        let mut out = Vec::new();
        for item in self.0.inner.outbox.iter().values().take(limit) {
            out.push(load(&item?, "outbox")?);
        }
        Ok(out)
    }

    /// How many messages wait in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.0.inner.outbox.len()
    }

    /// Rewrites an outbox entry (attempts, next try).
    pub fn put_outbox(&self, entry: &OutboxEntry) -> Result<(), StorageError> {
        self.0
            .inner
            .outbox
            .insert(entry.id.to_be_bytes(), store(entry)?)?;
        Ok(())
    }

    /// Removes a delivered or dropped entry.
    pub fn remove_outbox(&self, id: u64) -> Result<(), StorageError> {
        self.0.inner.outbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        self.0.commit().await
    }
}
