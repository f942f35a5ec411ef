//! The app's access_token as kept across restarts.

use std::fmt;

/// The app's access_token as kept across restarts.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The token (a credential: never logged).
    pub value: String,
    /// When it expires (unix seconds).
    pub expires_at: i64,
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredToken(***, expires_at={})", self.expires_at)
    }
}
