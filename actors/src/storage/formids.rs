//! The form-id pool's storage: pooled form_ids and prepay_ids, subscribe-message grants.

use crate::domain::{OpenId, PooledId};

use super::{Committing, StorageError};

/// The form-id pool's storage.
pub trait FormIdRepo: Send + Sync {
    /// Pools a form_id / prepay_id for `openid` until `expires_at` (unix s),
    /// keeping at most `keep` per user: the earliest-expiring go first.
    fn pool_id(
        &self,
        openid: &OpenId,
        expires_at: i64,
        entry: &PooledId,
        keep: usize,
    ) -> Result<(), StorageError>;

    /// Drops every pooled id that expired by `now` (unix s); returns how many.
    fn prune_expired_ids(&self, now: i64) -> Result<usize, StorageError>;

    /// How many ids `openid` has pooled (expired ones included until swept).
    fn pooled_count(&self, openid: &OpenId) -> usize;

    /// Takes one use of `openid`'s earliest-expiring id still valid at
    /// `now` (unix s), dropping expired ones on the way.
    fn take_pooled_id(&self, openid: &OpenId, now: i64) -> Result<Option<String>, StorageError>;

    /// Adds `n` subscribe-message grants of `template` for `openid`.
    fn add_grants(&self, openid: &OpenId, template: &str, n: u32) -> Result<(), StorageError>;

    /// Takes one grant of `template` for `openid`, if there is one.
    fn take_grant(&self, openid: &OpenId, template: &str) -> Result<bool, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
