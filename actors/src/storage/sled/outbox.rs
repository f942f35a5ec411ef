//! The notifier's repository: the `outbox` tree (entries are written by
//! the orders shards with the change they announce, read and removed here).

use super::*;
use crate::storage::{Committing, OutboxRepo};

/// The notifier's outbox.
#[derive(Clone)]
pub struct SledOutbox(pub(super) SledStore);

impl OutboxRepo for SledOutbox {
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        let mut out = Vec::new();
        for item in self.0.inner.outbox.iter().values().take(limit) {
            out.push(load(&item?, "outbox")?);
        }
        Ok(out)
    }

    fn outbox_len(&self) -> usize {
        self.0.inner.outbox.len()
    }

    fn put_outbox(&self, entry: &OutboxEntry) -> Result<(), StorageError> {
        self.0
            .inner
            .outbox
            .insert(entry.id.to_be_bytes(), store(entry)?)?;
        Ok(())
    }

    fn remove_outbox(&self, id: u64) -> Result<(), StorageError> {
        self.0.inner.outbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
