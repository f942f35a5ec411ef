//! What the ledger writes for a batch of money events: the ledger decides
//! every line (the book's rules live in `ledger/`), an engine stores them
//! all or none.

use super::{Account, ChinaDay, Entry, LineKind, OrderId, Posted, PostingKind, Subject};

/// What moved through WeChat Pay (or to the platform) for one order on a
/// China day: the reconciliation's side of the bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayLine {
    /// The China day of the posting.
    pub day: ChinaDay,
    /// Payment, refund or commission.
    pub what: LineKind,
    /// The order.
    pub order: OrderId,
    /// How much, fen.
    pub fen: u64,
}

impl DayLine {
    /// The line a posting makes: a payment or refund through WeChat Pay,
    /// or a completion's commission; None for everything else.
    pub fn of(posted: &Posted) -> Option<Self> {
        let posting = &posted.posting;
        let Subject::Order(order) = &posting.subject else {
            return None;
        };
        let amount_in = |wanted: &dyn Fn(&Account) -> bool| {
            posting
                .legs
                .iter()
                .find(|l| wanted(&l.account))
                .map_or(0, |l| l.amount)
        };
        let escrow = amount_in(&|a| matches!(a, Account::Escrow(_)));
        let commission = amount_in(&|a| *a == Account::Platform);
        let through_wechat = posting
            .legs
            .iter()
            .any(|l| l.account == Account::Clearing && l.amount == -escrow);
        let (what, fen) = match posting.kind {
            PostingKind::Payment if through_wechat => (LineKind::Payment, escrow),
            PostingKind::Refund if through_wechat => (LineKind::Refund, escrow),
            // The platform's revenue of the day (the console).
            PostingKind::Earning if commission > 0 => (LineKind::Commission, commission),
            _ => return None,
        };
        Some(Self {
            day: ChinaDay::of_unix_ms(posted.at_unix_ms),
            what,
            order: order.clone(),
            fen: fen.unsigned_abs(),
        })
    }
}

/// A batch of postings and everything they change, written atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Postings {
    /// The new postings, each under its key (none posted before).
    pub posted: Vec<Posted>,
    /// How much each account they touch moves, summed (an account left at
    /// zero holds nothing).
    pub moves: Vec<(Account, i64)>,
    /// The statement lines of couriers' accounts, numbered.
    pub lines: Vec<(Account, Entry)>,
    /// Payments, refunds and commissions by China day.
    pub days: Vec<DayLine>,
    /// The commission percent stamped on each order paid in the batch.
    pub rates: Vec<(OrderId, u8)>,
    /// The inbox keys of the events the batch posted or found posted.
    pub taken: Vec<u64>,
}

impl Postings {
    /// True when it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.posted.is_empty() && self.taken.is_empty()
    }
}
