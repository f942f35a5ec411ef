//! What lets the app message a user (pooled form_ids, prepay_ids,
//! templates) and the outbox entries of messages to send.

use super::*;

/// A pooled id that lets the app send a user a message: a template-message
/// form_id (one use) or a paid order's prepay_id (three uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledId {
    /// The form_id or prepay_id.
    pub value: String,
    /// Messages it may still carry.
    pub uses_left: u8,
}

/// The devtools' placeholder form_id: not usable, dropped on arrival.
pub const MOCK_FORM_ID: &str = "the formId is a mock one";

/// A form_id as received: 1–64 visible characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormId(String);

impl FormId {
    /// Parses one form_id; `field` names it in errors.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        let n = s.chars().count();
        if (1..=64).contains(&n) && !s.chars().any(char::is_control) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError(format!("{field} must be 1-64 characters")))
        }
    }

    /// The form_id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A subscribe-message template id: 1–128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateId(String);

impl TemplateId {
    /// Parses one template id; `field` names it in errors.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        if !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError(format!(
                "{field} must be 1-128 visible ASCII characters"
            )))
        }
    }

    /// The template id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a customer is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A courier took the order.
    Assigned,
    /// The courier picked the goods up.
    PickedUp,
    /// The courier handed them over.
    Delivered,
    /// The money is back.
    Refunded,
    /// Nobody has taken the paid order yet (told once; it is refunded if
    /// nobody does).
    Untaken,
    /// Not a message to the customer: the delivery reported to WeChat's
    /// shipping-info service (发货信息管理), through the same outbox.
    ShippingInfo,
}

impl MessageKind {
    /// The message an order status announces, if any.
    pub fn for_status(status: Status) -> Option<Self> {
        match status {
            Status::Assigned => Some(Self::Assigned),
            Status::PickedUp => Some(Self::PickedUp),
            Status::Delivered => Some(Self::Delivered),
            Status::Refunded => Some(Self::Refunded),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::PickedUp => "picked_up",
            Self::Delivered => "delivered",
            Self::Refunded => "refunded",
            Self::Untaken => "untaken",
            Self::ShippingInfo => "shipping_info",
        }
    }
}

/// A message waiting in the notifier's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Increasing id (also the dedup key).
    pub id: u64,
    /// The order it is about.
    pub order_id: OrderId,
    /// The recipient.
    pub to: OpenId,
    /// What happened.
    pub kind: MessageKind,
    /// When it was written (unix ms).
    pub created_at_ms: i64,
    /// Sending attempts so far.
    pub attempts: u32,
    /// Not before (unix ms).
    pub next_attempt_ms: i64,
    /// The permission spent on it, kept across retries.
    pub via: Option<Via>,
}

/// How a message may reach the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A subscribe-message grant (already taken).
    Subscribe,
    /// A template message with this pooled form_id / prepay_id.
    Template(String),
}
