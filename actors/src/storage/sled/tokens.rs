//! The access_token refresher's repository: `meta`'s `access_token`.

use super::*;
use crate::storage::{Committing, TokenRepo};

/// The token refresher's record.
#[derive(Clone)]
pub struct SledTokens(pub(super) SledStore);

impl TokenRepo for SledTokens {
    /// Keeps the app's access token, so a restart does not refresh it.
    fn put_access_token(&self, token: &StoredToken) -> Result<(), StorageError> {
        self.0.inner.meta.insert("access_token", store(token)?)?;
        Ok(())
    }

    /// The stored access token, if any.
    fn get_access_token(&self) -> Result<Option<StoredToken>, StorageError> {
        match self.0.inner.meta.get("access_token")? {
            Some(bytes) => load(&bytes, "access_token").map(Some),
            None => Ok(None),
        }
    }

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing {
        let store = self.0.clone();
        Box::pin(async move { store.commit().await })
    }
}
