//! The sessions actor's repository: the `sessions` tree.

use super::*;
use crate::storage::{Committing, SessionRepo};

/// The sessions actor's tree.
#[derive(Clone)]
pub struct SledSessions(pub(super) SledStore);

impl SessionRepo for SledSessions {
    /// Stores a login session under the hash of its token.
    fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> Result<(), StorageError> {
        self.0.inner.sessions.insert(token_hash, store(session)?)?;
        Ok(())
    }

    /// A session by token hash.
    fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>, StorageError> {
        match self.0.inner.sessions.get(token_hash)? {
            Some(bytes) => load(&bytes, "session").map(Some),
            None => Ok(None),
        }
    }

    /// Deletes sessions that expired before `now`; returns how many.
    fn remove_expired_sessions(&self, now: OffsetDateTime) -> Result<usize, StorageError> {
        let mut removed = 0;
        for item in self.0.inner.sessions.iter() {
            let (key, value) = item?;
            let expired = load::<Session>(&value, "session")
                .map(|s| s.expires_at < now)
                .unwrap_or(true);
            if expired {
                self.0.inner.sessions.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Blocks a user (or replaces the block's reason).
    fn put_block(&self, openid: &OpenId, block: &Block) -> Result<(), StorageError> {
        self.0
            .inner
            .blocked
            .insert(openid.as_str().as_bytes(), store(block)?)?;
        Ok(())
    }

    /// Lifts a block; false when there was none.
    fn remove_block(&self, openid: &OpenId) -> Result<bool, StorageError> {
        Ok(self
            .0
            .inner
            .blocked
            .remove(openid.as_str().as_bytes())?
            .is_some())
    }

    /// Every blocked user.
    fn all_blocks(&self) -> Result<Vec<(OpenId, Block)>, StorageError> {
        let mut all = Vec::new();
        for item in self.0.inner.blocked.iter() {
            let (key, value) = item?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let openid =
                OpenId::parse(&key).map_err(|_| StorageError::Corrupt { key: key.clone() })?;
            all.push((openid, load(&value, &key)?));
        }
        Ok(all)
    }

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing {
        let store = self.0.clone();
        Box::pin(async move { store.commit().await })
    }
}
