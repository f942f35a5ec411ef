//! The token refresher's storage: the app's current access_token.

use crate::domain::StoredToken;

use super::{Committing, StorageError};

/// The token refresher's storage.
pub trait TokenRepo: Send + Sync {
    /// Keeps the app's access token, so a restart does not refresh it.
    fn put_access_token(&self, token: &StoredToken) -> Result<(), StorageError>;

    /// The stored access token, if any.
    fn get_access_token(&self) -> Result<Option<StoredToken>, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
