//! The ledger's storage: postings, balances, statements, withdrawals, day lines, reconciliations, and the inbox of money events.

use std::collections::HashSet;

use crate::domain::{
    Account, ChinaDay, Entry, IdempotencyKey, Journal, LedgerDay, MoneyEvent, OpenId, OrderId,
    Postings, Reconciliation, Sequence, Withdrawal, WithdrawalId, WithdrawalStatus,
};

use super::{Committing, StorageError};

/// The ledger's storage.
pub trait LedgerRepo: Send + Sync {
    /// Up to `limit` money events waiting in the inbox, oldest first, with
    /// their inbox keys.
    fn inbox(&self, limit: usize) -> Result<Vec<(u64, MoneyEvent)>, StorageError>;

    /// Stores a batch of postings, and everything they change, atomically
    /// (the ledger decided them; see `ledger::posting`).
    fn write_postings(&self, postings: &Postings) -> Result<(), StorageError>;

    /// The commission percent stamped on each order when it was paid
    /// (None: not paid, or paid before stamps existed).
    fn rates_of(&self, orders: &[OrderId]) -> Result<Vec<Option<u8>>, StorageError>;

    /// The store's sequence (numbers statement lines).
    fn ids(&self) -> Sequence;

    /// Writes a withdrawal, with (atomically) the postings of the money it
    /// moves and, for a new one, the courier's Idempotency-Key.
    fn save_withdrawal(
        &self,
        withdrawal: &Withdrawal,
        postings: &Postings,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StorageError>;

    /// One withdrawal.
    fn withdrawal(&self, id: &WithdrawalId) -> Result<Option<Withdrawal>, StorageError>;

    /// The withdrawal a courier made with this Idempotency-Key, if any.
    fn withdrawal_by_key(
        &self,
        courier: &OpenId,
        key: &IdempotencyKey,
    ) -> Result<Option<Withdrawal>, StorageError>;

    /// A courier's withdrawals, newest first, up to `limit`, older than
    /// `before` when given.
    fn withdrawals_of(
        &self,
        courier: &OpenId,
        before: Option<&WithdrawalId>,
        limit: usize,
    ) -> Result<Vec<Withdrawal>, StorageError>;

    /// Withdrawals, newest first, in `status` when given, that `keep`
    /// takes, up to `limit`, older than `before` when given (the
    /// operators' queue).
    fn withdrawals(
        &self,
        status: Option<WithdrawalStatus>,
        before: Option<&WithdrawalId>,
        limit: usize,
        keep: &dyn Fn(&Withdrawal) -> bool,
    ) -> Result<Vec<Withdrawal>, StorageError>;

    /// Puts every stored withdrawal in the index by status, once (stores
    /// written before the index); answers how many were indexed.
    fn index_withdrawal_statuses(&self) -> Result<usize, StorageError>;

    /// True when a posting with this key exists.
    fn is_posted(&self, key: &str) -> Result<bool, StorageError>;

    /// Which of `keys` are posted (an engine that pays a round trip per
    /// read asks once).
    fn posted_among(&self, keys: &[String]) -> Result<HashSet<String>, StorageError> {
        let mut posted = HashSet::new();
        for key in keys {
            if self.is_posted(key)? {
                posted.insert(key.clone());
            }
        }
        Ok(posted)
    }

    /// One account's balance.
    fn balance(&self, account: &Account) -> Result<i64, StorageError>;

    /// Every posting ever made, replayed (the check's proof of the
    /// balances).
    fn journal(&self) -> Result<Journal, StorageError>;

    /// Every account that holds money, with its balance.
    fn balances(&self) -> Result<Vec<(Account, i64)>, StorageError>;

    /// Up to `limit` lines of a courier account's statement (only those
    /// keep one), newest first, older than the line `before` (a previous
    /// page's last `seq`) when given.
    fn statement(
        &self,
        account: &Account,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError>;

    /// Tells the ledger, once, every money event the stored orders went
    /// through before it existed (written to its inbox; posting them is
    /// idempotent, so a crash halfway only means doing it again).
    fn migrate_orders(&self) -> Result<usize, StorageError>;

    /// Tells the ledger every money event of the active orders it has not
    /// posted (at every start: a payment's event is written apart from
    /// its order on some engines, see [`super::OrderRepo::update_order_with`]). Active
    /// orders are the open ones, so this reads few.
    fn tell_active(&self) -> Result<usize, StorageError>;

    /// What the ledger moved through WeChat Pay on a China day.
    fn ledger_day(&self, day: ChinaDay) -> Result<LedgerDay, StorageError>;

    /// Stores a day's reconciliation (a re-run replaces it).
    fn save_reconciliation(&self, report: &Reconciliation) -> Result<(), StorageError>;

    /// A day's reconciliation, if it ran.
    fn reconciliation(&self, day: ChinaDay) -> Result<Option<Reconciliation>, StorageError>;

    /// Waits until every write made before this call is on disk.
    fn commit(&self) -> Committing;
}
