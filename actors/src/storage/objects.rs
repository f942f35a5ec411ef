//! Objects the service keeps itself (`objects.backend = "local"`): share
//! images and uploaded photos, with their bytes.

use crate::domain::{ObjectKey, StoredObject, Visibility};

use super::{Committing, StorageError};

/// Where local objects are kept: files beside a sled store, rows in
/// PostgreSQL (so every node serves them).
pub trait ObjectRepo: Send + Sync {
    /// Stores an object (replacing one with its key and visibility).
    fn put_object(&self, object: &StoredObject) -> Result<(), StorageError>;

    /// An object, if kept.
    fn get_object(
        &self,
        visibility: Visibility,
        key: &ObjectKey,
    ) -> Result<Option<StoredObject>, StorageError>;

    /// Every object's visibility and key, in key order per visibility.
    fn object_keys(&self) -> Result<Vec<(Visibility, ObjectKey)>, StorageError>;

    /// Waits until every write made before this call is durable.
    fn commit(&self) -> Committing;
}
