//! The sessions actor's repository: the `sessions` tree.

use super::*;
use crate::storage::{Committing, SessionRepo};

/// The sessions actor's tree.
#[derive(Clone)]
pub struct SledSessions(pub(super) SledStore);

impl SessionRepo for SledSessions {
    fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> Result<(), StorageError> {
        self.0.inner.sessions.insert(token_hash, store(session)?)?;
        Ok(())
    }

    fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>, StorageError> {
        match self.0.inner.sessions.get(token_hash)? {
            Some(bytes) => load(&bytes, "session").map(Some),
            None => Ok(None),
        }
    }

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

    fn put_block(&self, openid: &OpenId, block: &Block) -> Result<(), StorageError> {
        self.0
            .inner
            .blocked
            .insert(openid.as_str().as_bytes(), store(block)?)?;
        Ok(())
    }

    fn remove_block(&self, openid: &OpenId) -> Result<bool, StorageError> {
        Ok(self
            .0
            .inner
            .blocked
            .remove(openid.as_str().as_bytes())?
            .is_some())
    }

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

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}
