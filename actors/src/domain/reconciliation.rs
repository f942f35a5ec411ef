//! A day's reconciliation as reported: what disagrees between WeChat
//! Pay's bill and the ledger's lines of the day. Pure values.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::ChinaDay;

/// What a ledger day line is: money through WeChat Pay (a payment, a
/// refund) or the platform's commission on a completed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// The platform's commission (the console's revenue; not on the bill).
    Commission,
    /// A customer's payment.
    Payment,
    /// A refund to the customer.
    Refund,
}

impl LineKind {
    /// Its stable name (JSON, storage keys).
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Commission => "commission",
            LineKind::Payment => "payment",
            LineKind::Refund => "refund",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [LineKind::Commission, LineKind::Payment, LineKind::Refund]
            .into_iter()
            .find(|k| k.as_str() == name)
    }

    /// True for what WeChat Pay's bill also lists.
    pub fn through_wechat(self) -> bool {
        self.on_bill().is_some()
    }

    /// The bill line this kind is, when WeChat Pay's bill lists it.
    pub fn on_bill(self) -> Option<BillLine> {
        match self {
            LineKind::Commission => None,
            LineKind::Payment => Some(BillLine::Payment),
            LineKind::Refund => Some(BillLine::Refund),
        }
    }
}

/// What WeChat Pay's bill and the ledger both list: the lines a
/// reconciliation compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillLine {
    /// A customer's payment.
    Payment,
    /// A refund to the customer.
    Refund,
}

impl BillLine {
    /// Its stable name (JSON, stored reports).
    pub fn as_str(self) -> &'static str {
        match self {
            BillLine::Payment => "payment",
            BillLine::Refund => "refund",
        }
    }

    /// The line named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [BillLine::Payment, BillLine::Refund]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What disagrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// In WeChat Pay's bill, not in the ledger (a payment we missed).
    MissingInLedger,
    /// In the ledger, not in the bill.
    MissingInBill,
    /// On both sides with different amounts.
    AmountDiffers,
}

/// One disagreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Mismatch {
    /// How they disagree.
    pub kind: MismatchKind,
    /// A payment or a refund.
    pub what: BillLine,
    /// The order (`out_trade_no`).
    pub order_id: String,
    /// What the bill says, in fen.
    pub bill_fen: Option<u64>,
    /// What the ledger says, in fen.
    pub ledger_fen: Option<u64>,
}

/// A day's reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    /// The China day, `YYYY-MM-DD`.
    pub date: ChinaDay,
    /// When it ran (unix ms).
    pub ran_at_unix_ms: i64,
    /// Lines in WeChat Pay's bill.
    pub bill_lines: u64,
    /// Payments and refunds the ledger posted that day.
    pub ledger_lines: u64,
    /// What agrees.
    pub matched: u64,
    /// What does not.
    pub mismatches: Vec<Mismatch>,
}

/// The ledger's side of a day: what moved and the order → fen.
pub type LedgerDay = BTreeMap<(LineKind, String), u64>;
