//! The operators actor's repository: the `operators` tree (name → record,
//! the token only as its hash).

use super::*;
use crate::storage::{Committing, OperatorRepo};

/// The operators actor's tree.
#[derive(Clone)]
pub struct SledOperators(pub(super) SledStore);

impl OperatorRepo for SledOperators {
    fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StorageError> {
        self.0
            .inner
            .operators
            .insert(operator.name.as_str().as_bytes(), store(operator)?)?;
        Ok(())
    }

    fn all_operators(&self) -> Result<Vec<OperatorRecord>, StorageError> {
        let mut all = Vec::new();
        for item in self.0.inner.operators.iter() {
            let (key, value) = item?;
            all.push(load(&value, &String::from_utf8_lossy(&key))?);
        }
        Ok(all)
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
