//! A customer's complaint about a delivered order, and how an operator
//! settled it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::*;

/// Most photos a dispute may carry.
pub const MAX_DISPUTE_PHOTOS: usize = 3;

/// What went wrong, in the customer's choice of words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisputeReason {
    /// Marked delivered, never arrived.
    NotDelivered,
    /// Arrived damaged.
    Damaged,
    /// Someone else's parcel or meal.
    WrongItem,
    /// Anything else (the text says what).
    Other,
}

impl DisputeReason {
    /// Every reason, in wire order.
    pub const ALL: [DisputeReason; 4] = [
        DisputeReason::NotDelivered,
        DisputeReason::Damaged,
        DisputeReason::WrongItem,
        DisputeReason::Other,
    ];

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("reason must be not_delivered, damaged, wrong_item or other")
            })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeReason::NotDelivered => "not_delivered",
            DisputeReason::Damaged => "damaged",
            DisputeReason::WrongItem => "wrong_item",
            DisputeReason::Other => "other",
        }
    }
}

/// A dispute as the customer opens it (checked by the façade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDispute {
    /// What went wrong.
    pub reason: DisputeReason,
    /// In the customer's words, ≤ 200 characters.
    pub text: String,
    /// The customer's own uploads, ≤ [`MAX_DISPUTE_PHOTOS`].
    pub photos: Vec<UploadId>,
    /// WeChat's content check asked operators to look at the text (or could not check it).
    pub flagged: bool,
}

/// How an operator settled a dispute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// What goes back to the customer, 0 to the order's total.
    pub refund_fen: u32,
    /// The operator's note.
    pub note: String,
    /// Who (None only for a change written without a name).
    pub by: Option<OperatorName>,
    /// When.
    pub at: OffsetDateTime,
}

/// A dispute on an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    /// What went wrong.
    pub reason: DisputeReason,
    /// In the customer's words.
    pub text: String,
    /// Photo upload ids.
    pub photos: Vec<UploadId>,
    /// When it was opened.
    pub opened_at: OffsetDateTime,
    /// How it was settled, once it was.
    pub resolution: Option<Resolution>,
}

impl Dispute {
    /// A dispute opened now.
    pub fn open(new: NewDispute, now: OffsetDateTime) -> Self {
        Self {
            reason: new.reason,
            text: new.text,
            photos: new.photos,
            opened_at: now,
            resolution: None,
        }
    }
}

/// Where a resolution sends an order of `total` fen when `refund_fen` goes
/// back: nothing back completes it, all of it refunds it, a part refunds
/// that part and settles the rest.
pub fn resolution_event(refund_fen: u32, total: u32) -> Result<Event, ValidationError> {
    match refund_fen {
        0 => Ok(Event::Resolve),
        r if r <= total => Ok(Event::ResolveRefund),
        _ => Err(ValidationError(format!(
            "refund_fen must be between 0 and the order's total, {total}"
        ))),
    }
}
