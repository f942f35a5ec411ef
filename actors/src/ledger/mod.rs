//! The ledger: the only owner of the double-entry book. The orders shards
//! leave money events in its inbox with the order change that caused them;
//! it posts each once (the posting's key is derived from the event), keeps
//! balances and statements, and proves its invariants.

mod cancel;
mod money_day;
mod payout;
mod posting;
mod reconcile;
mod reconciling;
mod withdraw;

pub use cancel::{CancelWithdrawal, Canceller};
pub use money_day::{CourierBalance, MoneyDay};
pub use payout::{Payouts, TransferSeen};
pub use posting::Batch;
pub use reconcile::*;
pub use reconciling::Reconciler;
pub use withdraw::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::domain::{
    check, now_utc, unix_ms, Account, Check, Commission, Entry, LedgerDay, MoneyEvent, OpenId,
    OrderId, Reconciliation, Sequence, Withdrawal, WithdrawalConflict, WithdrawalEvent,
    WithdrawalId, WithdrawalStatus,
};
use crate::orders::OrderEvent;
use crate::storage::{LedgerRepo, StorageError};

/// How many inbox events one drain posts before looking again.
const DRAIN_BATCH: usize = 256;
/// How long after news of money the inbox is drained (what arrives
/// meanwhile is posted in the same transaction).
const DRAIN_AFTER: Duration = Duration::from_millis(20);
/// How often the inbox is swept even when nobody said it has news (an
/// event told while the ledger restarted).
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Longest statement page.
pub const MAX_STATEMENT: usize = 100;

/// What the ledger needs from the configuration.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// `money.commission_percent` and the campuses' own: the platform's
    /// share of a completed order's fee (never of the tip).
    pub commission: Commission,
}

/// Why the ledger could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// Storage failed.
    #[error("ledger storage failed")]
    Storage(#[source] Arc<StorageError>),
    /// The actor is restarting or gone.
    #[error("the ledger is unavailable")]
    Mailbox(#[source] MailboxError),
    /// WeChat Pay did not give the bill.
    #[error("WeChat Pay did not give the bill: {0}")]
    WeChat(String),
    /// The bill does not parse (or nothing can fetch one).
    #[error("{0}")]
    Bill(String),
}

impl From<StorageError> for LedgerError {
    fn from(e: StorageError) -> Self {
        LedgerError::Storage(Arc::new(e))
    }
}

impl From<MailboxError> for LedgerError {
    fn from(e: MailboxError) -> Self {
        LedgerError::Mailbox(e)
    }
}

/// A courier's money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    /// What they may withdraw.
    pub available_fen: i64,
    /// What they asked to withdraw and is not paid or returned yet.
    pub withdrawing_fen: i64,
    /// Their available account's statement, newest first.
    pub entries: Vec<Entry>,
    /// The `seq` to pass for the next page; None on the last.
    pub next_before: Option<u64>,
}

/// The ledger actor.
pub struct LedgerActor {
    repo: Arc<dyn LedgerRepo>,
    /// Numbers statement lines.
    ids: Sequence,
    config: LedgerConfig,
    rules: WithdrawalRules,
    payouts: Option<Payouts>,
    reconciler: Option<Reconciler>,
    /// The day a reconciliation is running for.
    reconciling: Option<crate::domain::ChinaDay>,
    /// A drain of the inbox is scheduled.
    drain_due: bool,
    consistent: Arc<AtomicBool>,
}

impl Actor for LedgerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Also after a restart: what was told meanwhile is posted, and the
        // book is proven again — against the whole journal, as the first
        // thing the actor does (the quick check at start already decided
        // `/readyz`; a replay of a big journal takes seconds).
        self.drain();
        ctx.notify(ProveJournal);
        ctx.run_interval(SWEEP_EVERY, |ledger, _| {
            ledger.drain();
        });
        // Transfers in flight when the service stopped: ask WeChat Pay.
        self.sweep_transfers(ctx);
        ctx.run_interval(payout::PAYOUT_SWEEP_EVERY, |ledger, ctx| {
            ledger.sweep_transfers(ctx);
        });
        self.reconcile_when_due(ctx);
        ctx.run_interval(reconciling::RECONCILE_CHECK_EVERY, |ledger, ctx| {
            ledger.reconcile_when_due(ctx);
        });
    }
}

/// The commission percents stamped on orders when they were paid.
#[derive(Message)]
#[rtype(result = "Result<Vec<Option<u8>>, LedgerError>")]
struct RatesOf(Vec<OrderId>);

impl Handler<RatesOf> for LedgerActor {
    type Result = Result<Vec<Option<u8>>, LedgerError>;

    fn handle(&mut self, RatesOf(orders): RatesOf, _: &mut Self::Context) -> Self::Result {
        // A payment told and not yet posted has its rate stamped now.
        self.drain();
        Ok(self.repo.rates_of(&orders)?)
    }
}

impl Supervised for LedgerActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("ledger restarting");
    }
}

impl LedgerActor {
    /// Posts what waits in the inbox and checks the book (the stored
    /// balances; with `proof`, against the whole journal too), saying so
    /// in the log when it does not balance (`/readyz` then answers 503).
    fn catch_up(&mut self, proof: Proof) {
        self.drain();
        match self.check(proof) {
            Ok(report) if !report.balanced => {
                tracing::error!(problems = ?report.problems, "the ledger does not balance");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %crate::errors::chain(&e), "the ledger could not be checked");
                self.consistent.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Posts every event in the inbox; answers how many were new.
    fn drain(&mut self) -> usize {
        let mut posted = 0;
        loop {
            let events = match self.repo.inbox(DRAIN_BATCH) {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = %crate::errors::chain(&e), "ledger inbox unreadable");
                    return posted;
                }
            };
            let full = events.len() == DRAIN_BATCH;
            if events.is_empty() {
                return posted;
            }
            match self.post_events(&events) {
                Ok(new) => {
                    posted += new;
                    metrics::counter!("lastmile_ledger_postings_total").increment(new as u64);
                }
                // One event the book refuses must not hold up the others.
                Err(_) => match self.post_one_by_one(events) {
                    Some(new) => posted += new,
                    None => return posted,
                },
            }
            if !full {
                return posted;
            }
        }
    }

    /// Posts inbox events in one batch the repository stores atomically;
    /// answers how many were new.
    fn post_events(&self, events: &[(u64, MoneyEvent)]) -> Result<usize, StorageError> {
        let at = unix_ms(now_utc());
        let mut batch = posting::Batch::new(self.repo.as_ref(), &self.ids);
        batch.ask_posted(events.iter().map(|(_, event)| event))?;
        for (seq, event) in events {
            batch.post_told(*seq, event, &self.config.commission, at)?;
        }
        let new = batch.new_postings();
        self.repo.write_postings(&batch.finish())?;
        Ok(new)
    }

    /// Posts `events` one batch each; None when one failed (it stays in
    /// the inbox, named in the log).
    fn post_one_by_one(&mut self, events: Vec<(u64, MoneyEvent)>) -> Option<usize> {
        let mut posted = 0;
        for one in events.chunks(1) {
            match self.post_events(one) {
                Ok(new) => {
                    posted += new;
                    metrics::counter!("lastmile_ledger_postings_total").increment(new as u64);
                }
                Err(e) => {
                    let key = one
                        .first()
                        .map(|(_, event)| event.key())
                        .unwrap_or_default();
                    tracing::error!(
                        key = %key,
                        error = %crate::errors::chain(&e),
                        "money event not posted (kept in the inbox)"
                    );
                    return None;
                }
            }
        }
        Some(posted)
    }

    /// Checks every invariant over the stored balances, and with
    /// [`Proof::Journal`] the balances against every posting.
    fn check(&self, proof: Proof) -> Result<Check, LedgerError> {
        let balances = self.repo.balances()?;
        let journal = match proof {
            Proof::Journal => Some(self.repo.journal()?),
            Proof::Balances => None,
        };
        let repo = &self.repo;
        let finished = |order: &OrderId| {
            // Unreadable counts as finished: the check then reports the
            // escrow rather than hide it.
            [format!("completed:{order}"), format!("refunded:{order}")]
                .iter()
                .any(|key| repo.is_posted(key).unwrap_or(true))
        };
        let report = check(&balances, journal.as_ref(), finished);
        self.consistent.store(report.balanced, Ordering::SeqCst);
        Ok(report)
    }

    fn wallet(
        &self,
        courier: &OpenId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Wallet, LedgerError> {
        let available = Account::Available(courier.clone());
        let limit = limit.clamp(1, MAX_STATEMENT);
        let mut entries = self.repo.statement(&available, before, limit + 1)?;
        let next_before = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(Wallet {
            available_fen: self.repo.balance(&available)?,
            withdrawing_fen: self.repo.balance(&Account::Withdrawing(courier.clone()))?,
            entries,
            next_before,
        })
    }

    /// Answers `value` once what the drain before it posted is on disk.
    fn durable<T: Send + 'static>(
        &self,
        posted: usize,
        value: Result<T, LedgerError>,
    ) -> ResponseFuture<Result<T, LedgerError>> {
        let repo = self.repo.clone();
        Box::pin(async move {
            let value = value?;
            if posted > 0 {
                repo.commit().await?;
            }
            Ok(value)
        })
    }
}

impl Handler<OrderEvent> for LedgerActor {
    type Result = ();

    fn handle(&mut self, event: OrderEvent, ctx: &mut Self::Context) {
        // Under load many events arrive per commit: post them together a
        // moment later, in one transaction, rather than one each now.
        if let OrderEvent::MoneyWritten = event {
            if !self.drain_due {
                self.drain_due = true;
                ctx.run_later(DRAIN_AFTER, |ledger, _| {
                    ledger.drain_due = false;
                    ledger.drain();
                });
            }
        }
    }
}

/// Check the book's invariants.
#[derive(Message)]
#[rtype(result = "Result<Check, LedgerError>")]
pub struct CheckBook;

impl Handler<CheckBook> for LedgerActor {
    type Result = ResponseFuture<Result<Check, LedgerError>>;

    fn handle(&mut self, _: CheckBook, _: &mut Self::Context) -> Self::Result {
        let posted = self.drain();
        let report = self.check(Proof::Journal);
        self.durable(posted, report)
    }
}

/// How much a check proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    /// The invariants over the stored balances (milliseconds).
    Balances,
    /// Those, and every balance against the replayed journal.
    Journal,
}

/// Prove the book against the whole journal.
#[derive(Message)]
#[rtype(result = "()")]
struct ProveJournal;

impl Handler<ProveJournal> for LedgerActor {
    type Result = ();

    fn handle(&mut self, _: ProveJournal, _: &mut Self::Context) {
        let started = std::time::Instant::now();
        self.catch_up(Proof::Journal);
        tracing::info!(
            took_ms = started.elapsed().as_millis() as u64,
            consistent = self.consistent.load(Ordering::SeqCst),
            "ledger proven against its journal"
        );
    }
}

/// A courier's wallet.
#[derive(Message)]
#[rtype(result = "Result<Wallet, LedgerError>")]
pub struct GetWallet {
    /// Whose.
    pub courier: OpenId,
    /// The previous page's `next_before`.
    pub before: Option<u64>,
    /// Page size (1–100).
    pub limit: usize,
}

impl Handler<GetWallet> for LedgerActor {
    type Result = ResponseFuture<Result<Wallet, LedgerError>>;

    fn handle(&mut self, msg: GetWallet, _: &mut Self::Context) -> Self::Result {
        // Every event an answered order change wrote is in the inbox:
        // posting them first, a wallet never lags behind what its courier
        // was told.
        let posted = self.drain();
        let wallet = self.wallet(&msg.courier, msg.before, msg.limit);
        self.durable(posted, wallet)
    }
}

/// The façade's handle on the ledger.
#[derive(Clone)]
pub struct Ledger {
    addr: Addr<LedgerActor>,
    consistent: Arc<AtomicBool>,
}

impl Ledger {
    /// Moves the money events of orders stored before the ledger existed
    /// into its inbox (once), and those of active orders it has not posted
    /// (every start), then starts the ledger, which posts them and checks
    /// the book.
    pub fn start(
        repo: Arc<dyn LedgerRepo>,
        config: LedgerConfig,
        rules: WithdrawalRules,
        payouts: Option<Payouts>,
        reconciler: Option<Reconciler>,
    ) -> Result<Self, StorageError> {
        // A migration that told anything covered the active orders too.
        let told = match repo.migrate_orders()? {
            0 => repo.tell_active()?,
            migrated => migrated,
        };
        // Not flushed here: both are done again at the next start unless
        // their marks were stored, and an engine stores writes in order.
        if told > 0 {
            tracing::info!(events = told, "stored orders told to the ledger");
        }
        let indexed = repo.index_withdrawal_statuses()?;
        if indexed > 0 {
            tracing::info!(withdrawals = indexed, "withdrawals indexed by status");
        }
        let consistent = Arc::new(AtomicBool::new(false));
        let mut ledger = LedgerActor {
            ids: repo.ids(),
            repo,
            config,
            rules,
            payouts: payouts.filter(|_| rules.payout == Payout::Transfer),
            reconciler,
            reconciling: None,
            drain_due: false,
            consistent: consistent.clone(),
        };
        // Before anyone asks `/readyz`: the invariants hold (the journal
        // is replayed once the actor runs).
        ledger.catch_up(Proof::Balances);
        let addr = Supervisor::start(move |_| ledger);
        Ok(Self { addr, consistent })
    }

    /// Where the orders shards send their events.
    pub fn listener(&self) -> Recipient<OrderEvent> {
        self.addr.clone().recipient()
    }

    /// True when the last check found the book balanced (`/readyz`).
    pub fn is_consistent(&self) -> bool {
        self.consistent.load(Ordering::SeqCst)
    }

    /// Checks the invariants now.
    pub async fn check(&self) -> Result<Check, LedgerError> {
        self.addr.send(CheckBook).await?
    }

    /// The commission percent each order was paid under (None: not paid
    /// yet, or paid before the ledger stamped rates: today's applies).
    pub async fn rates_of(&self, orders: Vec<OrderId>) -> Result<Vec<Option<u8>>, LedgerError> {
        self.addr.send(RatesOf(orders)).await?
    }

    /// A courier's wallet, a page of their statement.
    pub async fn wallet(
        &self,
        courier: OpenId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Wallet, LedgerError> {
        self.addr
            .send(GetWallet {
                courier,
                before,
                limit,
            })
            .await?
    }
}
