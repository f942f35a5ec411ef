//! Login sessions.

use time::OffsetDateTime;

use super::*;

/// A login session: who holds the token, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub openid: OpenId,
    /// When the token stops working.
    pub expires_at: OffsetDateTime,
}

/// An operator's block on a user: they may not place orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Why (shown to the user).
    pub reason: String,
    /// Since when.
    pub at: OffsetDateTime,
}
