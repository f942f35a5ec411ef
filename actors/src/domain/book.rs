//! The double-entry book, pure: accounts, the postings each money event
//! makes, the commission rule and the invariants. No storage, no clock:
//! the ledger actor feeds it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{CampusId, Event, OpenId, Order, OrderId, Status, WithdrawalId};

/// Where money sits. Every account but [`Account::Clearing`] holds what
/// someone is owed and never goes below zero; clearing is the other side
/// of the money WeChat Pay holds for the merchant, so it is negative.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// WeChat Pay: payments come from it, refunds and payouts go to it.
    Clearing,
    /// The platform's commission.
    Platform,
    /// Refunds an operator settled outside WeChat Pay.
    ByHand,
    /// What a customer paid for one order, until it is settled.
    Escrow(OrderId),
    /// What a courier may withdraw.
    Available(OpenId),
    /// What a courier asked to withdraw, until it is paid or returned.
    Withdrawing(OpenId),
}

impl Account {
    /// The account's stable name (its storage key).
    pub fn key(&self) -> String {
        match self {
            Account::Clearing => "clearing".into(),
            Account::Platform => "platform".into(),
            Account::ByHand => "by_hand".into(),
            Account::Escrow(id) => format!("escrow:{id}"),
            Account::Available(c) => format!("available:{c}"),
            Account::Withdrawing(c) => format!("withdrawing:{c}"),
        }
    }

    /// The account a key names.
    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "clearing" => return Some(Account::Clearing),
            "platform" => return Some(Account::Platform),
            "by_hand" => return Some(Account::ByHand),
            _ => {}
        }
        let (class, owner) = key.split_once(':')?;
        match class {
            "escrow" => OrderId::parse(owner).ok().map(Account::Escrow),
            "available" => OpenId::parse(owner).ok().map(Account::Available),
            "withdrawing" => OpenId::parse(owner).ok().map(Account::Withdrawing),
            _ => None,
        }
    }

    /// The class of the account, as the check reports it.
    pub fn class(&self) -> &'static str {
        match self {
            Account::Clearing => "clearing",
            Account::Platform => "platform",
            Account::ByHand => "by_hand",
            Account::Escrow(_) => "escrow",
            Account::Available(_) => "courier_available",
            Account::Withdrawing(_) => "courier_withdrawing",
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// Something that moves money, told by the orders shards in the same
/// write as the order change (so it survives any crash with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyEvent {
    /// WeChat Pay confirmed a payment of `total` fen (fee + tip).
    Paid {
        /// The order.
        order: OrderId,
        /// What was paid.
        total: u32,
        /// The order's campus: the commission in force on it now is the
        /// one its completion pays (None: the default campus).
        campus: Option<CampusId>,
    },
    /// The order completed: its escrow goes to its courier and the platform.
    Completed {
        /// The order.
        order: OrderId,
        /// Who delivered it.
        courier: OpenId,
        /// What was paid.
        total: u32,
        /// Of which the tip, the courier's whole.
        tip: u32,
        /// The order's campus, whose commission applies (None: the
        /// default campus, or an order from before campuses).
        campus: Option<CampusId>,
    },
    /// Money went back to the customer.
    Refunded {
        /// The order.
        order: OrderId,
        /// How much.
        amount: u32,
        /// Settled by an operator outside WeChat Pay.
        by_hand: bool,
    },
    /// A courier asked to withdraw: the amount is set aside.
    WithdrawalRequested {
        /// The withdrawal.
        withdrawal: WithdrawalId,
        /// Whose.
        courier: OpenId,
        /// How much.
        amount: u32,
    },
    /// A withdrawal was paid out (by WeChat Pay, or by hand).
    WithdrawalPaid {
        /// The withdrawal.
        withdrawal: WithdrawalId,
        /// Whose.
        courier: OpenId,
        /// How much.
        amount: u32,
    },
    /// A withdrawal was rejected, failed or cancelled: the amount is
    /// available again.
    WithdrawalReturned {
        /// The withdrawal.
        withdrawal: WithdrawalId,
        /// Whose.
        courier: OpenId,
        /// How much.
        amount: u32,
    },
}

/// What a posting is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An order.
    Order(OrderId),
    /// A courier's withdrawal.
    Withdrawal(WithdrawalId),
}

/// What a posting is, for wallets and the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostingKind {
    /// A customer's payment into escrow.
    Payment,
    /// An order's escrow paid out to its courier and the platform.
    Earning,
    /// Money back to a customer.
    Refund,
    /// A courier's withdrawal set aside from what they may withdraw.
    Withdrawal,
    /// A withdrawal paid out.
    Payout,
    /// A rejected, failed or cancelled withdrawal, available again.
    WithdrawalReturned,
}

/// One line of a posting: `amount` fen into (positive) or out of
/// (negative) `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    /// The account.
    pub account: Account,
    /// Signed fen.
    pub amount: i64,
}

/// A balanced set of legs, posted once under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// The idempotency key, derived from the event that caused it.
    pub key: String,
    /// What it is.
    pub kind: PostingKind,
    /// What it is about.
    pub subject: Subject,
    /// The legs; they sum to zero.
    pub legs: Vec<Leg>,
}

impl Posting {
    /// True when the legs sum to zero.
    pub fn is_balanced(&self) -> bool {
        self.legs.iter().map(|l| l.amount).sum::<i64>() == 0
    }
}

/// The platform's share of completed orders: `money.commission_percent`,
/// or a campus's own `commission_percent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commission {
    /// `money.commission_percent`.
    pub default: u8,
    /// Campuses with their own share.
    pub campuses: std::collections::HashMap<CampusId, u8>,
}

impl Commission {
    /// The percent an order on `campus` (None: the default campus) pays.
    pub fn on(&self, campus: Option<&CampusId>) -> u8 {
        campus
            .and_then(|c| self.campuses.get(c))
            .copied()
            .unwrap_or(self.default)
    }

    /// The percent in force for `event`'s order now (a payment stamps it
    /// on the order; a completion of an order paid before stamps existed
    /// takes it).
    pub fn of(&self, event: &MoneyEvent) -> u8 {
        match event {
            MoneyEvent::Completed { campus, .. } | MoneyEvent::Paid { campus, .. } => {
                self.on(campus.as_ref())
            }
            _ => self.default,
        }
    }
}

/// The platform's commission on an order: ⌊(money left after refunds, tip
/// excluded) × percent / 100⌋. Refunds come out of the fee before the tip.
pub fn commission(left: u32, tip: u32, percent: u8) -> u32 {
    let base = u64::from(left.saturating_sub(tip));
    // base ≤ u32::MAX and percent ≤ 100: the quotient fits.
    (base * u64::from(percent.min(100)) / 100) as u32
}

/// What the courier of an order of `total` fen with `tip` gets when it
/// completes untouched by refunds.
pub fn earning(total: u32, tip: u32, percent: u8) -> u32 {
    total - commission(total, tip, percent)
}

impl MoneyEvent {
    /// The key its posting is stored under: a replayed event finds it.
    pub fn key(&self) -> String {
        match self {
            MoneyEvent::Paid { order, .. } => format!("paid:{order}"),
            MoneyEvent::Completed { order, .. } => format!("completed:{order}"),
            MoneyEvent::Refunded { order, .. } => format!("refunded:{order}"),
            MoneyEvent::WithdrawalRequested { withdrawal, .. } => format!("withdraw:{withdrawal}"),
            MoneyEvent::WithdrawalPaid { withdrawal, .. } => format!("payout:{withdrawal}"),
            MoneyEvent::WithdrawalReturned { withdrawal, .. } => format!("returned:{withdrawal}"),
        }
    }

    /// What it is about.
    pub fn subject(&self) -> Subject {
        match self {
            MoneyEvent::Paid { order, .. }
            | MoneyEvent::Completed { order, .. }
            | MoneyEvent::Refunded { order, .. } => Subject::Order(order.clone()),
            MoneyEvent::WithdrawalRequested { withdrawal, .. }
            | MoneyEvent::WithdrawalPaid { withdrawal, .. }
            | MoneyEvent::WithdrawalReturned { withdrawal, .. } => {
                Subject::Withdrawal(withdrawal.clone())
            }
        }
    }

    /// The escrow whose balance its posting depends on (a completion pays
    /// out what is left).
    pub fn escrow(&self) -> Option<Account> {
        match self {
            MoneyEvent::Completed { order, .. } => Some(Account::Escrow(order.clone())),
            _ => None,
        }
    }

    /// Its posting, given what the order's escrow holds now (refunds may
    /// have taken part of it; 0 for events without one) and the
    /// commission percent.
    pub fn posting(&self, escrow: i64, percent: u8) -> Posting {
        let subject = self.subject();
        let (kind, legs) = match self {
            MoneyEvent::WithdrawalRequested {
                courier, amount, ..
            } => (
                PostingKind::Withdrawal,
                vec![
                    leg(Account::Available(courier.clone()), -i64::from(*amount)),
                    leg(Account::Withdrawing(courier.clone()), i64::from(*amount)),
                ],
            ),
            MoneyEvent::WithdrawalPaid {
                courier, amount, ..
            } => (
                PostingKind::Payout,
                vec![
                    leg(Account::Withdrawing(courier.clone()), -i64::from(*amount)),
                    leg(Account::Clearing, i64::from(*amount)),
                ],
            ),
            MoneyEvent::WithdrawalReturned {
                courier, amount, ..
            } => (
                PostingKind::WithdrawalReturned,
                vec![
                    leg(Account::Withdrawing(courier.clone()), -i64::from(*amount)),
                    leg(Account::Available(courier.clone()), i64::from(*amount)),
                ],
            ),
            _ => self.order_legs(escrow, percent),
        };
        Posting {
            key: self.key(),
            kind,
            subject,
            legs: legs.into_iter().filter(|l| l.amount != 0).collect(),
        }
    }

    /// The legs of an order's money event.
    fn order_legs(&self, escrow: i64, percent: u8) -> (PostingKind, Vec<Leg>) {
        let Subject::Order(order) = self.subject() else {
            return (PostingKind::Payment, Vec::new());
        };
        let escrow_account = Account::Escrow(order);
        match self {
            MoneyEvent::Paid { total, .. } => (
                PostingKind::Payment,
                vec![
                    leg(Account::Clearing, -i64::from(*total)),
                    leg(escrow_account, i64::from(*total)),
                ],
            ),
            MoneyEvent::Completed { courier, tip, .. } => {
                let left = u32::try_from(escrow.max(0)).unwrap_or(u32::MAX);
                let fee = commission(left, *tip, percent);
                (
                    PostingKind::Earning,
                    vec![
                        leg(escrow_account, -i64::from(left)),
                        leg(Account::Available(courier.clone()), i64::from(left - fee)),
                        leg(Account::Platform, i64::from(fee)),
                    ],
                )
            }
            MoneyEvent::Refunded {
                amount, by_hand, ..
            } => {
                let to = if *by_hand {
                    Account::ByHand
                } else {
                    Account::Clearing
                };
                (
                    PostingKind::Refund,
                    vec![
                        leg(escrow_account, -i64::from(*amount)),
                        leg(to, i64::from(*amount)),
                    ],
                )
            }
            _ => (PostingKind::Payment, Vec::new()),
        }
    }
}

/// A posting with when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// When, unix ms.
    pub at_unix_ms: i64,
    /// What.
    pub posting: Posting,
}

/// One line of an account's statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the ledger (increasing; the statement's cursor).
    pub seq: u64,
    /// When, unix ms.
    pub at_unix_ms: i64,
    /// What moved the money.
    pub kind: PostingKind,
    /// What it is about.
    pub subject: Subject,
    /// Signed fen into the account.
    pub amount: i64,
}

impl MoneyEvent {
    /// The money an order change moves: a payment, a completion, a
    /// refund (by WeChat Pay or settled by hand), or a partial refund and
    /// the completion of the rest, in the order they post.
    pub fn of_change(order: &Order, event: Event) -> Vec<Self> {
        let id = order.id.clone();
        let refunded = |by_hand| MoneyEvent::Refunded {
            order: id.clone(),
            amount: order.refund_fen(),
            by_hand,
        };
        let completed = || {
            order.courier.clone().map(|courier| MoneyEvent::Completed {
                order: id.clone(),
                courier,
                total: order.total_fen(),
                tip: order.tip_fen.get(),
                campus: order.extras.campus.clone(),
            })
        };
        match event {
            Event::PaymentConfirmed => vec![MoneyEvent::Paid {
                order: id.clone(),
                total: order.total_fen(),
                campus: order.extras.campus.clone(),
            }],
            Event::Confirm | Event::Resolve => completed().into_iter().collect(),
            Event::RefundConfirmed | Event::RefundSettled => {
                vec![refunded(event == Event::RefundSettled)]
            }
            Event::PartRefundConfirmed | Event::PartRefundSettled => {
                let mut events = vec![refunded(event == Event::PartRefundSettled)];
                events.extend(completed());
                events
            }
            _ => Vec::new(),
        }
    }

    /// Every money event an order stored before the ledger existed went
    /// through, judged from where it ended up (a refunded order was paid
    /// and refunded, whatever happened between).
    pub fn of_past(order: &Order) -> Vec<Self> {
        let paid = MoneyEvent::Paid {
            order: order.id.clone(),
            total: order.total_fen(),
            campus: order.extras.campus.clone(),
        };
        let last = order.history().last().and_then(|c| c.event);
        let by_hand = matches!(last, Some(Event::RefundSettled | Event::PartRefundSettled));
        match order.status() {
            Status::AwaitingPayment | Status::Cancelled => Vec::new(),
            Status::Completed => {
                let mut events = vec![paid];
                let end = match last {
                    Some(Event::PartRefundSettled) => Event::PartRefundSettled,
                    Some(Event::PartRefundConfirmed) => Event::PartRefundConfirmed,
                    _ => Event::Confirm,
                };
                events.extend(Self::of_change(order, end));
                events
            }
            Status::Refunded => vec![
                paid,
                MoneyEvent::Refunded {
                    order: order.id.clone(),
                    amount: order.refund_fen(),
                    by_hand,
                },
            ],
            _ => vec![paid],
        }
    }
}

fn leg(account: Account, amount: i64) -> Leg {
    Leg { account, amount }
}

/// One class of accounts in the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClassTotal {
    /// `clearing`, `platform`, `by_hand`, `escrow`, `courier_available`
    /// or `courier_withdrawing`.
    pub account: String,
    /// How many accounts of the class hold money.
    pub count: u64,
    /// Their sum in fen.
    pub balance_fen: i64,
}

/// The result of checking the invariants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// True when every invariant holds.
    pub balanced: bool,
    /// The sum over all accounts (0 when the book balances).
    pub sum_fen: i64,
    /// Postings replayed to prove the balances (0 when only the
    /// invariants over the balances were checked).
    pub postings: u64,
    /// The totals by class of account.
    pub accounts: Vec<ClassTotal>,
    /// Each broken invariant, in words.
    pub problems: Vec<String>,
}

/// The journal replayed: what every posting ever made says each account
/// holds. The stored balances are kept as postings are made; the journal
/// proves them, so a balance changed without a posting shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Journal {
    /// Postings replayed.
    pub postings: u64,
    /// Each account's sum of legs (accounts that sum to 0 are left out).
    pub sums: BTreeMap<Account, i64>,
    /// Keys of postings whose legs do not sum to zero.
    pub unbalanced: Vec<String>,
}

impl Journal {
    /// Adds one posting.
    pub fn add(&mut self, posting: &Posting) {
        self.postings += 1;
        if !posting.is_balanced() {
            self.unbalanced.push(posting.key.clone());
        }
        for leg in &posting.legs {
            let sum = self.sums.entry(leg.account.clone()).or_default();
            *sum += leg.amount;
            // Most escrows empty again: keep only what holds money, so a
            // replay's memory is that of the open book, not of history.
            if *sum == 0 {
                self.sums.remove(&leg.account);
            }
        }
    }

    /// Where `balances` (every account holding money) differ from it.
    fn differences<'a>(
        &self,
        balances: impl IntoIterator<Item = (&'a Account, i64)>,
    ) -> Vec<String> {
        let mut left = self.sums.clone();
        let mut problems = Vec::new();
        for (account, stored) in balances {
            let journal = left.remove(account).unwrap_or(0);
            if journal != stored {
                problems.push(format!(
                    "{account} holds {stored} fen but its postings sum to {journal} fen"
                ));
            }
        }
        for (account, journal) in left {
            problems.push(format!(
                "{account} holds 0 fen but its postings sum to {journal} fen"
            ));
        }
        problems.extend(
            self.unbalanced
                .iter()
                .map(|key| format!("posting {key} does not sum to zero")),
        );
        problems
    }
}

/// Checks the book: the stored balances are what the journal says (when
/// it is given), the sum over all accounts is zero, no account but clearing is negative,
/// and a finished order's escrow is empty.
pub fn check(
    balances: &[(Account, i64)],
    journal: Option<&Journal>,
    finished: impl Fn(&OrderId) -> bool,
) -> Check {
    let mut sum: i64 = 0;
    let mut classes: BTreeMap<&'static str, (u64, i64)> = BTreeMap::new();
    let mut problems = journal.map_or_else(Vec::new, |j| {
        j.differences(balances.iter().map(|(a, b)| (a, *b)))
    });
    for (account, balance) in balances.iter().map(|(a, b)| (a, *b)) {
        sum += balance;
        let class = classes.entry(account.class()).or_default();
        class.0 += u64::from(balance != 0);
        class.1 += balance;
        if balance < 0 && *account != Account::Clearing {
            problems.push(format!("{account} is negative ({balance} fen)"));
        }
        if let Account::Escrow(order) = account {
            if balance != 0 && finished(order) {
                problems.push(format!(
                    "{account} holds {balance} fen after the order finished"
                ));
            }
        }
    }
    if sum != 0 {
        problems.push(format!("the accounts sum to {sum} fen, not 0"));
    }
    Check {
        balanced: problems.is_empty(),
        sum_fen: sum,
        postings: journal.map_or(0, |j| j.postings),
        accounts: classes
            .into_iter()
            .map(|(account, (count, balance_fen))| ClassTotal {
                account: account.into(),
                count,
                balance_fen,
            })
            .collect(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (OrderId, OpenId) {
        (
            OrderId::parse("ORDER1").expect("id"),
            OpenId::parse("oCOURIER").expect("openid"),
        )
    }

    /// Applies postings to balances, as the repository does, and keeps
    /// them in the journal.
    fn apply(balances: &mut BTreeMap<Account, i64>, journal: &mut Journal, posting: &Posting) {
        assert!(posting.is_balanced(), "{posting:?}");
        for l in &posting.legs {
            *balances.entry(l.account.clone()).or_default() += l.amount;
        }
        journal.add(posting);
    }

    /// The check over balances as stored (accounts at 0 have no key).
    fn report(
        balances: &BTreeMap<Account, i64>,
        journal: &Journal,
        finished: impl Fn(&OrderId) -> bool,
    ) -> Check {
        let stored: Vec<(Account, i64)> = balances
            .iter()
            .filter(|(_, b)| **b != 0)
            .map(|(a, b)| (a.clone(), *b))
            .collect();
        check(&stored, Some(journal), finished)
    }

    #[test]
    fn commission_is_rounded_down_and_never_touches_the_tip() {
        assert_eq!(commission(300, 0, 10), 30);
        assert_eq!(commission(299, 0, 10), 29);
        assert_eq!(commission(450, 150, 10), 30);
        assert_eq!(
            commission(100, 150, 10),
            0,
            "a refund took more than the fee"
        );
        assert_eq!(commission(300, 0, 0), 0);
        assert_eq!(commission(300, 0, 200), 300, "at most everything");
        assert_eq!(commission(u32::MAX, 0, 100), u32::MAX);
    }

    #[test]
    fn a_paid_then_completed_order_pays_courier_and_platform_and_empties_its_escrow() {
        let (order, courier) = ids();
        let mut balances = BTreeMap::new();
        let mut journal = Journal::default();
        let paid = MoneyEvent::Paid {
            order: order.clone(),
            total: 455,
            campus: None,
        };
        apply(&mut balances, &mut journal, &paid.posting(0, 10));
        let escrow = balances[&Account::Escrow(order.clone())];
        assert_eq!(escrow, 455);
        let done = MoneyEvent::Completed {
            order: order.clone(),
            courier: courier.clone(),
            total: 455,
            tip: 150,
            campus: None,
        };
        apply(&mut balances, &mut journal, &done.posting(escrow, 10));
        // Commission ⌊305 × 10 %⌋ = 30; the courier gets the rest, tip whole.
        assert_eq!(balances[&Account::Platform], 30);
        assert_eq!(balances[&Account::Available(courier)], 425);
        assert_eq!(balances[&Account::Clearing], -455);
        let report = report(&balances, &journal, |_| true);
        assert!(report.balanced, "{report:?}");
        assert_eq!(report.sum_fen, 0);
        assert_eq!(report.postings, 2);
    }

    #[test]
    fn a_refund_empties_the_escrow_back_to_clearing_or_by_hand() {
        let (order, _) = ids();
        let mut balances = BTreeMap::new();
        let mut journal = Journal::default();
        apply(
            &mut balances,
            &mut journal,
            &MoneyEvent::Paid {
                order: order.clone(),
                total: 300,
                campus: None,
            }
            .posting(0, 10),
        );
        let refund = MoneyEvent::Refunded {
            order: order.clone(),
            amount: 300,
            by_hand: true,
        };
        assert_eq!(refund.key(), format!("refunded:{order}"));
        apply(&mut balances, &mut journal, &refund.posting(300, 10));
        assert_eq!(balances[&Account::ByHand], 300);
        assert_eq!(balances[&Account::Escrow(order)], 0);
        assert!(report(&balances, &journal, |_| true).balanced);
    }

    #[test]
    fn the_check_names_every_broken_invariant() {
        let (order, courier) = ids();
        let broken = BTreeMap::from([
            (Account::Clearing, -300),
            (Account::Escrow(order.clone()), 200),
            (Account::Available(courier), -50),
        ]);
        // A journal that says the same: only the invariants fail.
        let journal = Journal {
            postings: 1,
            sums: broken.clone(),
            unbalanced: vec!["made:up".into()],
        };
        let r = report(&broken, &journal, |o| *o == order);
        assert!(!r.balanced);
        assert_eq!(r.sum_fen, -150);
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        let healthy = BTreeMap::from([(Account::Clearing, -300), (Account::Escrow(order), 300)]);
        let journal = Journal {
            postings: 1,
            sums: healthy.clone(),
            unbalanced: Vec::new(),
        };
        assert!(report(&healthy, &journal, |_| false).balanced);
    }

    #[test]
    fn a_balance_changed_without_a_posting_is_found_by_the_journal() {
        let (order, courier) = ids();
        let mut balances = BTreeMap::new();
        let mut journal = Journal::default();
        let paid = MoneyEvent::Paid {
            order: order.clone(),
            total: 300,
            campus: None,
        };
        apply(&mut balances, &mut journal, &paid.posting(0, 10));
        let done = MoneyEvent::Completed {
            order,
            courier: courier.clone(),
            total: 300,
            tip: 0,
            campus: None,
        };
        apply(&mut balances, &mut journal, &done.posting(300, 10));
        assert!(report(&balances, &journal, |_| true).balanced);
        assert_eq!(journal.sums.len(), 3, "the emptied escrow is not kept");
        // 10 fen moved from the platform to the courier by hand: the sum is
        // still 0 and nothing is negative, but the postings disagree.
        *balances.entry(Account::Platform).or_default() -= 10;
        *balances.entry(Account::Available(courier)).or_default() += 10;
        let r = report(&balances, &journal, |_| true);
        assert!(!r.balanced);
        assert_eq!(r.sum_fen, 0);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(
            r.problems[0].contains("its postings sum to"),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn account_keys_read_back() {
        let (order, courier) = ids();
        for account in [
            Account::Clearing,
            Account::Platform,
            Account::ByHand,
            Account::Escrow(order),
            Account::Available(courier.clone()),
            Account::Withdrawing(courier),
        ] {
            assert_eq!(Account::parse(&account.key()), Some(account));
        }
        assert_eq!(Account::parse("escrow:"), None);
        assert_eq!(Account::parse("moon"), None);
    }

    /// One step of a random day of money.
    #[derive(Debug, Clone)]
    enum Step {
        Pay(usize, u32, u32),
        Complete(usize, usize),
        /// An order, by hand or not, the part of its total in percent.
        Refund(usize, bool, u8),
        Withdraw(usize, u32),
        Settle(usize, bool),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0..6usize, 1..100_000u32, 0..10_001u32).prop_map(|(o, f, t)| Step::Pay(o, f, t)),
            (0..6usize, 0..3usize).prop_map(|(o, c)| Step::Complete(o, c)),
            (0..6usize, any::<bool>(), 1..=100u8).prop_map(|(o, h, p)| Step::Refund(o, h, p)),
            (0..3usize, 1..200_000u32).prop_map(|(c, a)| Step::Withdraw(c, a)),
            (0..8usize, any::<bool>()).prop_map(|(w, paid)| Step::Settle(w, paid)),
        ]
    }

    proptest::proptest! {
        /// Whatever happens, in whatever order the services allow it: the
        /// book sums to 0 after every posting, every balance is what its
        /// postings say, nothing but clearing goes negative, a finished
        /// order's escrow is empty, and each courier's money (available,
        /// withdrawing, paid out) is what their orders earned — after a
        /// partial refund, on what was left.
        #[test]
        fn every_step_keeps_the_book_balanced(
            steps in proptest::collection::vec(step(), 1..60),
            percent in 0u8..=100,
        ) {
            let order = |i: usize| OrderId::parse(&format!("ORDER{i}")).expect("id");
            let courier = |i: usize| OpenId::parse(&format!("oCOURIER{i}")).expect("openid");
            let mut balances: BTreeMap<Account, i64> = BTreeMap::new();
            let mut journal = Journal::default();
            // Per order once paid: (total, tip, finished, refunded).
            let mut paid: BTreeMap<usize, (u32, u32, bool, u32)> = BTreeMap::new();
            // Per courier: what their orders earned, what was paid out.
            let mut earned = [0i64; 3];
            let mut out_to = [0i64; 3];
            let mut open_withdrawals: Vec<(WithdrawalId, usize, u32)> = Vec::new();
            let mut posted = std::collections::HashSet::new();
            for step in steps {
                let event = match step {
                    Step::Pay(o, fee, tip) if !paid.contains_key(&o) => {
                        paid.insert(o, (fee + tip, tip, false, 0));
                        MoneyEvent::Paid { order: order(o), total: fee + tip, campus: None }
                    }
                    Step::Complete(o, c) => match paid.get_mut(&o) {
                        Some((total, tip, finished @ false, refunded)) => {
                            *finished = true;
                            let left = *total - *refunded;
                            earned[c] += i64::from(left - commission(left, *tip, percent));
                            MoneyEvent::Completed { order: order(o), courier: courier(c), total: *total, tip: *tip, campus: None }
                        }
                        _ => continue,
                    },
                    // One refund per order (its key): all of it, or a part
                    // after which the order may still complete.
                    Step::Refund(o, by_hand, part) => match paid.get_mut(&o) {
                        Some((total, _, finished @ false, refunded @ 0)) => {
                            let amount = (u64::from(*total) * u64::from(part) / 100).max(1) as u32;
                            *refunded = amount;
                            *finished = amount == *total;
                            MoneyEvent::Refunded { order: order(o), amount, by_hand }
                        }
                        _ => continue,
                    },
                    Step::Withdraw(c, amount) => {
                        let available = balances.get(&Account::Available(courier(c))).copied().unwrap_or(0);
                        if i64::from(amount) > available {
                            continue;
                        }
                        let id = WithdrawalId::parse(&format!("W{:031}", posted.len())).expect("id");
                        open_withdrawals.push((id.clone(), c, amount));
                        MoneyEvent::WithdrawalRequested { withdrawal: id, courier: courier(c), amount }
                    }
                    Step::Settle(w, paid_out) if w < open_withdrawals.len() => {
                        let (withdrawal, c, amount) = open_withdrawals.remove(w);
                        if paid_out {
                            out_to[c] += i64::from(amount);
                            MoneyEvent::WithdrawalPaid { withdrawal, courier: courier(c), amount }
                        } else {
                            MoneyEvent::WithdrawalReturned { withdrawal, courier: courier(c), amount }
                        }
                    }
                    _ => continue,
                };
                // A replayed event posts nothing: only the first counts.
                if !posted.insert(event.key()) {
                    continue;
                }
                let escrow = event
                    .escrow()
                    .and_then(|a| balances.get(&a).copied())
                    .unwrap_or(0);
                apply(&mut balances, &mut journal, &event.posting(escrow, percent));
                let finished = |id: &OrderId| {
                    paid.iter().any(|(i, (_, _, done, _))| *done && order(*i) == *id)
                };
                let report = report(&balances, &journal, finished);
                proptest::prop_assert!(report.balanced, "{:?} after {:?}", report.problems, event);
                proptest::prop_assert_eq!(report.sum_fen, 0);
                for c in 0..3 {
                    let held = |a: Account| balances.get(&a).copied().unwrap_or(0);
                    let money = held(Account::Available(courier(c)))
                        + held(Account::Withdrawing(courier(c)))
                        + out_to[c];
                    proptest::prop_assert_eq!(money, earned[c], "courier {} after {:?}", c, event);
                }
            }
        }
    }
}
