//! Login sessions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

/// A login session: who holds the token, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub openid: OpenId,
    /// When the token stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}
