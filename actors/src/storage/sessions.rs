//! The sessions actor's storage: login sessions and operators' blocks on users.

use time::OffsetDateTime;

use crate::domain::{Block, OpenId, Session};

use super::{Committing, StorageError};

/// The sessions actor's storage.
pub trait SessionRepo: Send + Sync {
    /// Stores a login session under the hash of its token.
    fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> Result<(), StorageError>;

    /// A session by token hash.
    fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>, StorageError>;

    /// Deletes sessions that expired before `now`; returns how many.
    fn remove_expired_sessions(&self, now: OffsetDateTime) -> Result<usize, StorageError>;

    /// Blocks a user (or replaces the block's reason).
    fn put_block(&self, openid: &OpenId, block: &Block) -> Result<(), StorageError>;

    /// Lifts a block; false when there was none.
    fn remove_block(&self, openid: &OpenId) -> Result<bool, StorageError>;

    /// Every blocked user.
    fn all_blocks(&self) -> Result<Vec<(OpenId, Block)>, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
