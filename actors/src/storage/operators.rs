//! The operators actor's storage: operators with their roles, campuses and token hashes.

use crate::domain::OperatorRecord;

use super::{Committing, StorageError};

/// The operators actor's storage.
pub trait OperatorRepo: Send + Sync {
    /// Saves an operator.
    fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StorageError>;

    /// Every operator, revoked ones included, by name.
    fn all_operators(&self) -> Result<Vec<OperatorRecord>, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
