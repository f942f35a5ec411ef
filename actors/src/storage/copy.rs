//! Moving a store between engines (`lastmile store copy`): every kind of
//! thing a store holds as domain values, read from one engine and written
//! into another, then counted and the ledger checked on the target.
//!
//! Balances are not copied: the target derives them from the postings it
//! is given (PostgreSQL's trigger, sled's posting write), so a copy whose
//! journal and balances disagree cannot pass the check.

use std::fmt;

use crate::domain::{
    check, Account, Block, Check, ChinaDay, CourierProfile, DayLine, Entry, IdempotencyKey,
    MoneyEvent, OpenId, OperatorRecord, Order, OrderId, OutboxEntry, PaymentRecord, PooledId,
    Posted, Reconciliation, Session, StoredObject, StoredToken, Upload, Withdrawal, WithdrawalId,
};

use super::{LedgerRepo, StorageError};

/// How many items one read or write moves.
pub const BATCH: usize = 1000;

/// A kind of thing a store holds, in the order a copy moves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Orders with their histories.
    Orders,
    /// Idempotency keys of recent creates.
    IdempotencyKeys,
    /// Payment sessions.
    Payments,
    /// Sign-in sessions.
    Sessions,
    /// Operators' blocks on users.
    Blocks,
    /// Operators.
    Operators,
    /// Pooled form ids and prepay ids.
    FormIds,
    /// Subscribe-message grants.
    Grants,
    /// The app's access token.
    Tokens,
    /// Uploaded share codes' URLs.
    ShareCodes,
    /// Courier profiles.
    Couriers,
    /// Orders couriers gave back, per day.
    CourierReleases,
    /// Photo records.
    Uploads,
    /// Photos stored per user per day.
    UploadDays,
    /// Local objects (photos, share images) with their bytes.
    Objects,
    /// Messages not sent yet.
    Outbox,
    /// Money events not posted yet.
    LedgerInbox,
    /// The ledger's journal.
    Postings,
    /// Couriers' statement lines.
    Statements,
    /// Payments, refunds and commissions per day.
    DayLines,
    /// Commission rates stamped on paid orders.
    Rates,
    /// Withdrawals.
    Withdrawals,
    /// Couriers' withdrawal idempotency keys.
    WithdrawalKeys,
    /// Daily reconciliation reports.
    Reconciliations,
}

impl Kind {
    /// Every kind, in copy order (postings before what refers to them).
    pub const ALL: [Kind; 24] = [
        Kind::Orders,
        Kind::IdempotencyKeys,
        Kind::Payments,
        Kind::Sessions,
        Kind::Blocks,
        Kind::Operators,
        Kind::FormIds,
        Kind::Grants,
        Kind::Tokens,
        Kind::ShareCodes,
        Kind::Couriers,
        Kind::CourierReleases,
        Kind::Uploads,
        Kind::UploadDays,
        Kind::Objects,
        Kind::Outbox,
        Kind::LedgerInbox,
        Kind::Postings,
        Kind::Statements,
        Kind::DayLines,
        Kind::Rates,
        Kind::Withdrawals,
        Kind::WithdrawalKeys,
        Kind::Reconciliations,
    ];

    /// Its name in the copy's report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Orders => "orders",
            Kind::IdempotencyKeys => "idempotency_keys",
            Kind::Payments => "payments",
            Kind::Sessions => "sessions",
            Kind::Blocks => "blocks",
            Kind::Operators => "operators",
            Kind::FormIds => "form_ids",
            Kind::Grants => "grants",
            Kind::Tokens => "tokens",
            Kind::ShareCodes => "share_codes",
            Kind::Couriers => "couriers",
            Kind::CourierReleases => "courier_releases",
            Kind::Uploads => "uploads",
            Kind::UploadDays => "upload_days",
            Kind::Objects => "objects",
            Kind::Outbox => "outbox",
            Kind::LedgerInbox => "ledger_inbox",
            Kind::Postings => "postings",
            Kind::Statements => "statement_lines",
            Kind::DayLines => "day_lines",
            Kind::Rates => "rates",
            Kind::Withdrawals => "withdrawals",
            Kind::WithdrawalKeys => "withdrawal_keys",
            Kind::Reconciliations => "reconciliations",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing a store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An order with its history (boxed: the largest item by far).
    Order(Box<Order>),
    /// A customer's idempotency key for a create.
    IdempotencyKey {
        /// Whose.
        customer: OpenId,
        /// The key.
        key: IdempotencyKey,
        /// The order it made.
        order: OrderId,
    },
    /// A payment session.
    Payment(PaymentRecord),
    /// A session under the sha256 of its token.
    Session {
        /// sha256 of the token.
        token_hash: [u8; 32],
        /// The session.
        session: Session,
    },
    /// A block on a user.
    Block {
        /// Who.
        openid: OpenId,
        /// Why and since when.
        block: Block,
    },
    /// An operator.
    Operator(OperatorRecord),
    /// A pooled form id.
    FormId {
        /// Whose.
        openid: OpenId,
        /// When it expires (unix s).
        expires_at: u64,
        /// Its id in the pool.
        id: u64,
        /// The id and its uses left.
        pooled: PooledId,
    },
    /// Subscribe-message grants left for a template.
    Grant {
        /// Whose.
        openid: OpenId,
        /// The template.
        template: String,
        /// Grants left.
        left: u32,
    },
    /// The app's access token.
    Token(StoredToken),
    /// An uploaded share code's URL.
    ShareCode {
        /// The scene.
        scene: String,
        /// The page.
        page: String,
        /// Where it was uploaded.
        url: String,
    },
    /// A courier's profile.
    Courier(CourierProfile),
    /// Orders a courier gave back on a day.
    CourierReleases {
        /// Who.
        openid: OpenId,
        /// Which day.
        day: ChinaDay,
        /// How many.
        n: u32,
    },
    /// A photo's record.
    Upload(Upload),
    /// Photos a user stored on a day.
    UploadDay {
        /// Who.
        openid: OpenId,
        /// Which day.
        day: ChinaDay,
        /// How many.
        n: u32,
    },
    /// A local object.
    Object(StoredObject),
    /// A message to send.
    Outbox(OutboxEntry),
    /// A money event to post.
    LedgerInbox {
        /// Its place in the inbox.
        seq: u64,
        /// The event.
        event: MoneyEvent,
    },
    /// A posting of the journal.
    Posting(Posted),
    /// A courier account's statement line.
    Statement {
        /// The account.
        account: Account,
        /// The line.
        entry: Entry,
    },
    /// A payment, refund or commission of a day.
    DayLine(DayLine),
    /// The commission percent an order was paid at.
    Rate {
        /// The order.
        order: OrderId,
        /// Percent.
        percent: u8,
    },
    /// A withdrawal.
    Withdrawal(Withdrawal),
    /// A courier's idempotency key for a withdrawal.
    WithdrawalKey {
        /// Whose.
        courier: OpenId,
        /// The key.
        key: String,
        /// The withdrawal it made.
        withdrawal: WithdrawalId,
    },
    /// A day's reconciliation.
    Reconciliation(Reconciliation),
}

/// Reads a whole store kind by kind (offline: nothing changes it meanwhile).
pub trait Reader {
    /// The next items of `kind`, at most `max`; empty once every one was
    /// read. Call with one kind until it is empty, then the next.
    fn next_batch(&mut self, kind: Kind, max: usize) -> Result<Vec<Item>, StorageError>;
}

/// A store seen whole, for moving it.
pub trait Dump {
    /// A reader from the first item of every kind.
    fn reader(&self) -> Result<Box<dyn Reader + '_>, StorageError>;

    /// Writes the items it does not hold yet (an item it holds is left as
    /// it is, so a second copy writes nothing); answers how many it wrote.
    /// Items of one kind come in batches; [`Dump::finish`] ends the kind.
    fn import(&self, items: &[Item]) -> Result<usize, StorageError>;

    /// Makes what was imported durable (and, on PostgreSQL, checked: one
    /// transaction per kind).
    fn finish(&self) -> Result<(), StorageError>;

    /// How many items of `kind` it holds.
    fn count(&self, kind: Kind) -> Result<u64, StorageError>;
}

/// What one kind's copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCopied {
    /// The kind.
    pub kind: Kind,
    /// Items read from the source.
    pub read: u64,
    /// Items written (the rest were there already).
    pub written: u64,
    /// Items the source holds.
    pub source: u64,
    /// Items the target holds after the copy.
    pub target: u64,
}

/// What a copy did, and whether the target agrees with the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Per kind, in copy order.
    pub kinds: Vec<KindCopied>,
    /// The ledger checked on the target.
    pub ledger: Check,
}

impl Copied {
    /// Every difference between source and target, in words (none: the
    /// copy is whole).
    pub fn differences(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .kinds
            .iter()
            .filter(|k| k.target < k.source)
            .map(|k| format!("{}: source holds {}, target {}", k.kind, k.source, k.target))
            .collect();
        out.extend(self.ledger.problems.iter().map(|p| format!("ledger: {p}")));
        out
    }
}

/// Copies every item `from` holds into `to`, then counts both and checks
/// the ledger on the target (`ledger`: the target's).
pub fn copy(
    from: &dyn Dump,
    to: &dyn Dump,
    ledger: &dyn LedgerRepo,
) -> Result<Copied, StorageError> {
    let mut reader = from.reader()?;
    let mut kinds = Vec::with_capacity(Kind::ALL.len());
    for kind in Kind::ALL {
        let (mut read, mut written) = (0u64, 0u64);
        loop {
            let batch = reader.next_batch(kind, BATCH)?;
            if batch.is_empty() {
                break;
            }
            read += batch.len() as u64;
            written += to.import(&batch)? as u64;
        }
        to.finish()?;
        kinds.push(KindCopied {
            kind,
            read,
            written,
            source: from.count(kind)?,
            target: to.count(kind)?,
        });
    }
    let (balances, journal) = (ledger.balances()?, ledger.journal()?);
    let finished = |order: &OrderId| {
        // Unreadable counts as finished: the check then reports the escrow.
        [format!("completed:{order}"), format!("refunded:{order}")]
            .iter()
            .any(|key| ledger.is_posted(key).unwrap_or(true))
    };
    let ledger = check(&balances, Some(&journal), finished);
    Ok(Copied { kinds, ledger })
}
