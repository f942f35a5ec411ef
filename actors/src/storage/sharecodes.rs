//! The share-code actor's storage: uploaded wxacodes by scene and page.

use super::{Committing, StorageError};

/// The share-code actor's storage.
pub trait ShareCodeRepo: Send + Sync {
    /// The URL of an uploaded share code, if made before.
    fn get_share_code(&self, scene: &str, page: &str) -> Result<Option<String>, StorageError>;

    /// Remembers an uploaded share code's URL.
    fn put_share_code(&self, scene: &str, page: &str, url: &str) -> Result<(), StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
