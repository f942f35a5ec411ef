//! An order's history: each change, when, and who caused it.

use std::fmt;

use time::OffsetDateTime;

use super::*;

/// Most notes (changes without an event) an order keeps; the oldest go
/// first. Every status change is kept: money and click-to-door figures
/// are read from them, and the status machine bounds how many there are.
pub const MAX_NOTES: usize = 20;

/// Who caused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedBy {
    /// The order's customer.
    Customer,
    /// A courier (grab, pickup, deliver).
    Courier(OpenId),
    /// WeChat Pay (payment and refund results).
    WeChatPay,
    /// The dispatcher (planned assignment, taking a task back).
    Dispatcher,
    /// A timer (unpaid timeout, auto-confirm).
    Timer,
    /// A campus operator, from the console (named since operators have
    /// names; changes stored before that have none).
    Operator(Option<OperatorName>),
}

impl ChangedBy {
    /// The wire name of the kind of actor.
    pub fn kind(&self) -> &'static str {
        match self {
            ChangedBy::Customer => "customer",
            ChangedBy::Courier(_) => "courier",
            ChangedBy::WeChatPay => "wechat_pay",
            ChangedBy::Dispatcher => "dispatcher",
            ChangedBy::Timer => "timer",
            ChangedBy::Operator(_) => "operator",
        }
    }
}

impl fmt::Display for ChangedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangedBy::Courier(id) => write!(f, "courier {id}"),
            ChangedBy::Operator(Some(name)) => write!(f, "operator {name}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// One change in an order's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// When.
    pub at: OffsetDateTime,
    /// What happened; None for a note that changed no status.
    pub event: Option<Event>,
    /// The status after it.
    pub to: Status,
    /// Who caused it.
    pub by: ChangedBy,
    /// Why, when someone said (operators), else empty.
    pub note: String,
}
