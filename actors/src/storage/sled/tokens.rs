//! The access_token refresher's repository: `meta`'s `access_token`.

use super::*;
use crate::storage::{Committing, TokenRepo};

/// The token refresher's record.
#[derive(Clone)]
pub struct SledTokens(pub(super) SledStore);

impl TokenRepo for SledTokens {
    fn put_access_token(&self, token: &StoredToken) -> Result<(), StorageError> {
        self.0.inner.meta.insert("access_token", store(token)?)?;
        Ok(())
    }

    fn get_access_token(&self) -> Result<Option<StoredToken>, StorageError> {
        match self.0.inner.meta.get("access_token")? {
            Some(bytes) => load(&bytes, "access_token").map(Some),
            None => Ok(None),
        }
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
