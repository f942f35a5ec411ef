//! The operators actor's repository: the `operators` tree (name → record,
//! the token only as its hash).

use super::*;
use crate::storage::{Committing, OperatorRepo};

/// The operators actor's tree.
#[derive(Clone)]
pub struct SledOperators(pub(super) SledStore);

impl OperatorRepo for SledOperators {
    /// Saves an operator.
    fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StorageError> {
        self.0
            .inner
            .operators
            .insert(operator.name.as_str().as_bytes(), store(operator)?)?;
        Ok(())
    }

    /// Every operator, revoked ones included, by name.
    fn all_operators(&self) -> Result<Vec<OperatorRecord>, StorageError> {
        let mut all = Vec::new();
        for item in self.0.inner.operators.iter() {
            let (key, value) = item?;
            all.push(load(&value, &String::from_utf8_lossy(&key))?);
        }
        Ok(all)
    }

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing {
        let store = self.0.clone();
        Box::pin(async move { store.commit().await })
    }

    /// Makes every write so far durable, blocking (the command line).
    fn flush_blocking(&self) -> Result<(), StorageError> {
        self.0.flush_blocking()
    }
}
