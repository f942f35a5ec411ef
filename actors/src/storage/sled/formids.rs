//! The form-id pool's repository: the `formids` and `grants` trees.

use super::*;
use crate::storage::{Committing, FormIdRepo};

/// The form-id pool's trees.
#[derive(Clone)]
pub struct SledFormIds(pub(super) SledStore);

impl FormIdRepo for SledFormIds {
    fn pool_id(
        &self,
        openid: &OpenId,
        expires_at: i64,
        entry: &PooledId,
        keep: usize,
    ) -> Result<(), StorageError> {
        let prefix = user_prefix(openid);
        let mut key = prefix.clone();
        key.extend_from_slice(&(expires_at.max(0) as u64).to_be_bytes());
        key.extend_from_slice(&self.0.inner.ids.next(unix_ms()).to_be_bytes());
        self.0.inner.formids.insert(key, store(entry)?)?;
        let pooled = self.0.inner.formids.scan_prefix(&prefix).keys().count();
        for old in self
            .0
            .inner
            .formids
            .scan_prefix(&prefix)
            .keys()
            .take(pooled.saturating_sub(keep))
        {
            self.0.inner.formids.remove(old?)?;
        }
        Ok(())
    }

    fn prune_expired_ids(&self, now: i64) -> Result<usize, StorageError> {
        let mut removed = 0;
        for key in self.0.inner.formids.iter().keys() {
            let key = key?;
            let expires = key
                .iter()
                .position(|b| *b == 0)
                .and_then(|at| key.get(at + 1..at + 9))
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes) as i64;
            if expires <= now {
                self.0.inner.formids.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn pooled_count(&self, openid: &OpenId) -> usize {
        self.0
            .inner
            .formids
            .scan_prefix(user_prefix(openid))
            .count()
    }

    fn take_pooled_id(&self, openid: &OpenId, now: i64) -> Result<Option<String>, StorageError> {
        let prefix = user_prefix(openid);
        for item in self.0.inner.formids.scan_prefix(&prefix) {
            let (key, value) = item?;
            let expires = key
                .get(prefix.len()..prefix.len() + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes) as i64;
            if expires <= now {
                self.0.inner.formids.remove(&key)?;
                continue;
            }
            let mut entry: PooledId = load(&value, "formid")?;
            entry.uses_left = entry.uses_left.saturating_sub(1);
            if entry.uses_left == 0 {
                self.0.inner.formids.remove(&key)?;
            } else {
                self.0.inner.formids.insert(&key, store(&entry)?)?;
            }
            return Ok(Some(entry.value));
        }
        Ok(None)
    }

    fn add_grants(&self, openid: &OpenId, template: &str, n: u32) -> Result<(), StorageError> {
        let key = grant_key(openid, template);
        let now = self.grants_left(&key)?;
        self.0
            .inner
            .grants
            .insert(key, &now.saturating_add(n).to_be_bytes())?;
        Ok(())
    }

    fn take_grant(&self, openid: &OpenId, template: &str) -> Result<bool, StorageError> {
        let key = grant_key(openid, template);
        match self.grants_left(&key)? {
            0 => Ok(false),
            1 => {
                self.0.inner.grants.remove(key)?;
                Ok(true)
            }
            n => {
                self.0.inner.grants.insert(key, &(n - 1).to_be_bytes())?;
                Ok(true)
            }
        }
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}

impl SledFormIds {
    fn grants_left(&self, key: &[u8]) -> Result<u32, StorageError> {
        Ok(self
            .0
            .inner
            .grants
            .get(key)?
            .and_then(|v| v.as_ref().try_into().ok())
            .map_or(0, u32::from_be_bytes))
    }
}
