//! The ledger's repository: `ledger_postings` (each posting under its
//! idempotency key), `ledger_balances` (account → fen), `ledger_entries`
//! (each account's statement), and `ledger_inbox`, where the orders shards
//! leave money events in the same transaction as the order change that
//! caused them (read and emptied here, like the notifier's outbox). Inbox
//! keys are the store's increasing ids ([`Sequence`]), so events are posted in the order they
//! happened (an order's payment before its completion).

use ::sled::transaction::TransactionalTree;

use crate::domain::{
    Account, ChinaDay, DayLine, Entry, Journal, LedgerDay, LineKind, MoneyEvent, Posted, Postings,
    Reconciliation, Sequence, Withdrawal, WithdrawalId, WithdrawalStatus,
};

use super::*;
use crate::storage::{Committing, LedgerRepo};

/// Marks that stored orders were told to the ledger once.
const MIGRATED: &str = "ledger_migrated";
/// Most withdrawals made room for up front.
const MAX_PAGE: usize = 100;
/// Marks that every stored withdrawal is in the index by status.
const STATUS_INDEXED: &str = "withdrawals_status_indexed";

/// Where a withdrawal is in the index by status: the status, a 0 byte,
/// its id (ids grow with time, so a reversed prefix scan is newest first).
pub(super) fn status_key(status: WithdrawalStatus, id: &[u8]) -> Vec<u8> {
    [status.as_str().as_bytes(), b"\0", id].concat()
}

/// The ledger's trees.
#[derive(Clone)]
pub struct SledLedger(pub(super) SledStore);

fn balance_of(bytes: Option<::sled::IVec>) -> i64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map_or(0, i64::from_be_bytes)
}

/// Where an account's statement lines live: its key, a 0 byte, the line's
/// sequence number (so a prefix scan reads one account in order).
pub(super) fn entry_key(account: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(account.len() + 9);
    key.extend_from_slice(account.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl LedgerRepo for SledLedger {
    fn inbox(&self, limit: usize) -> Result<Vec<(u64, MoneyEvent)>, StorageError> {
        let mut out = Vec::new();
        for item in self.0.inner.ledger_inbox.iter().take(limit) {
            let (key, value) = item?;
            let seq = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StorageError::Corrupt {
                    key: "ledger_inbox".into(),
                })?;
            out.push((seq, load(&value, "ledger_inbox")?));
        }
        Ok(out)
    }

    fn write_postings(&self, postings: &Postings) -> Result<(), StorageError> {
        let inner = &self.0.inner;
        let encoded = Encoded::of(postings)?;
        (
            &inner.ledger_postings,
            &inner.ledger_balances,
            &inner.ledger_entries,
            &inner.ledger_inbox,
            &inner.ledger_days,
            &inner.ledger_rates,
        )
            .transaction(|(postings_tree, balances, entries, inbox, days, rates)| {
                let book = Book {
                    postings: postings_tree,
                    balances,
                    entries,
                    days,
                    inbox,
                    rates,
                };
                book.write(postings, &encoded)
            })
            .map_err(unwrap_tx)
    }

    fn rates_of(&self, orders: &[OrderId]) -> Result<Vec<Option<u8>>, StorageError> {
        orders
            .iter()
            .map(|o| {
                let stamped = self.0.inner.ledger_rates.get(o.as_str().as_bytes())?;
                Ok(stamped.and_then(|v| v.first().copied()))
            })
            .collect()
    }

    fn ids(&self) -> Sequence {
        self.0.inner.ids.clone()
    }

    fn save_withdrawal(
        &self,
        withdrawal: &Withdrawal,
        postings: &Postings,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StorageError> {
        let inner = &self.0.inner;
        let id = withdrawal.id.as_str().as_bytes();
        let record = store(withdrawal)?;
        let encoded = Encoded::of(postings)?;
        let index = courier_key(&withdrawal.courier, id);
        let key = key.map(|k| courier_key(&withdrawal.courier, k.as_str().as_bytes()));
        let now_in = status_key(withdrawal.status, id);
        (
            &inner.ledger_postings,
            &inner.ledger_balances,
            &inner.ledger_entries,
            &inner.withdrawals,
            &inner.withdrawals_by_courier,
            &inner.withdrawal_keys,
            &inner.ledger_days,
            &inner.withdrawals_by_status,
            &inner.ledger_inbox,
            &inner.ledger_rates,
        )
            .transaction(
                |(
                    postings_tree,
                    balances,
                    entries,
                    withdrawals,
                    by_courier,
                    keys,
                    days,
                    by_status,
                    inbox,
                    rates,
                )| {
                    if let Some(old) = withdrawals.insert(id, record.as_slice())? {
                        let old: Withdrawal = load(&old, withdrawal.id.as_str()).map_err(abort)?;
                        by_status.remove(status_key(old.status, id))?;
                    }
                    by_status.insert(now_in.as_slice(), &[])?;
                    by_courier.insert(index.as_slice(), &[])?;
                    if let Some(key) = &key {
                        keys.insert(key.as_slice(), id)?;
                    }
                    let book = Book {
                        postings: postings_tree,
                        balances,
                        entries,
                        days,
                        inbox,
                        rates,
                    };
                    book.write(postings, &encoded)
                },
            )
            .map_err(unwrap_tx)
    }

    fn withdrawal(&self, id: &WithdrawalId) -> Result<Option<Withdrawal>, StorageError> {
        match self.0.inner.withdrawals.get(id.as_str().as_bytes())? {
            Some(bytes) => load(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    fn withdrawal_by_key(
        &self,
        courier: &OpenId,
        key: &IdempotencyKey,
    ) -> Result<Option<Withdrawal>, StorageError> {
        let index = courier_key(courier, key.as_str().as_bytes());
        match self.0.inner.withdrawal_keys.get(index)? {
            Some(id) => {
                let id = WithdrawalId::parse(&String::from_utf8_lossy(&id)).map_err(|_| {
                    StorageError::Corrupt {
                        key: "withdrawal_keys".into(),
                    }
                })?;
                self.withdrawal(&id)
            }
            None => Ok(None),
        }
    }

    fn withdrawals_of(
        &self,
        courier: &OpenId,
        before: Option<&WithdrawalId>,
        limit: usize,
    ) -> Result<Vec<Withdrawal>, StorageError> {
        let index = &self.0.inner.withdrawals_by_courier;
        self.through_index(index, courier_key(courier, b""), before, limit, &|_| true)
    }

    fn withdrawals(
        &self,
        status: Option<WithdrawalStatus>,
        before: Option<&WithdrawalId>,
        limit: usize,
        keep: &dyn Fn(&Withdrawal) -> bool,
    ) -> Result<Vec<Withdrawal>, StorageError> {
        let Some(status) = status else {
            let mut out = Vec::with_capacity(limit.min(MAX_PAGE));
            let tree = &self.0.inner.withdrawals;
            let items = match before {
                Some(id) => tree.range(..id.as_str().as_bytes()),
                None => tree.range::<&[u8], _>(..),
            };
            for item in items.rev() {
                let (key, value) = item?;
                let w: Withdrawal = load(&value, &String::from_utf8_lossy(&key))?;
                if keep(&w) {
                    out.push(w);
                    if out.len() == limit {
                        break;
                    }
                }
            }
            return Ok(out);
        };
        // The index moves with the record in one transaction; a record
        // in another status is not this status's.
        let index = &self.0.inner.withdrawals_by_status;
        let in_status = |w: &Withdrawal| w.status == status && keep(w);
        self.through_index(index, status_key(status, b""), before, limit, &in_status)
    }

    fn index_withdrawal_statuses(&self) -> Result<usize, StorageError> {
        let inner = &self.0.inner;
        if inner.meta.contains_key(STATUS_INDEXED)? {
            return Ok(0);
        }
        let mut n = 0;
        for item in inner.withdrawals.iter() {
            let (key, value) = item?;
            let w: Withdrawal = load(&value, &String::from_utf8_lossy(&key))?;
            inner
                .withdrawals_by_status
                .insert(status_key(w.status, &key), &[])?;
            n += 1;
        }
        inner.meta.insert(STATUS_INDEXED, &[1u8])?;
        Ok(n)
    }

    fn is_posted(&self, key: &str) -> Result<bool, StorageError> {
        Ok(self.0.inner.ledger_postings.contains_key(key.as_bytes())?)
    }

    fn balance(&self, account: &Account) -> Result<i64, StorageError> {
        let bytes = self.0.inner.ledger_balances.get(account.key().as_bytes())?;
        Ok(balance_of(bytes))
    }

    fn journal(&self) -> Result<Journal, StorageError> {
        let mut journal = Journal::default();
        for item in self.0.inner.ledger_postings.iter() {
            let (key, value) = item?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let mut posted: Posted = load(&value, &key)?;
            posted.posting.key = key;
            journal.add(&posted.posting);
        }
        Ok(journal)
    }

    fn balances(&self) -> Result<Vec<(Account, i64)>, StorageError> {
        let mut out = Vec::new();
        for item in self.0.inner.ledger_balances.iter() {
            let (key, value) = item?;
            let name = String::from_utf8_lossy(&key);
            let account = Account::parse(&name).ok_or_else(|| StorageError::Corrupt {
                key: name.clone().into_owned(),
            })?;
            out.push((account, balance_of(Some(value))));
        }
        Ok(out)
    }

    fn statement(
        &self,
        account: &Account,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let name = account.key();
        let start = entry_key(&name, 0);
        let end = entry_key(&name, before.unwrap_or(u64::MAX));
        let mut out = Vec::with_capacity(limit);
        for item in self
            .0
            .inner
            .ledger_entries
            .range(start..end)
            .rev()
            .take(limit)
        {
            let (key, value) = item?;
            let mut entry: Entry = load(&value, "ledger_entries")?;
            let seq = key
                .get(key.len().saturating_sub(8)..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            entry.seq = seq;
            out.push(entry);
        }
        Ok(out)
    }

    fn migrate_orders(&self) -> Result<usize, StorageError> {
        let inner = &self.0.inner;
        if inner.meta.contains_key(MIGRATED)? {
            return Ok(0);
        }
        let told = self.tell_unposted(&[&inner.active, &inner.archive])?;
        inner.meta.insert(MIGRATED, &[1u8])?;
        Ok(told)
    }

    /// Tells the ledger every money event of the active orders it has not
    /// posted (at every start: a payment's event is written apart from
    /// its order, see [`super::OrderRepo::update_order_with`]). Active
    /// orders are the open ones, so this reads few.
    fn tell_active(&self) -> Result<usize, StorageError> {
        self.tell_unposted(&[&self.0.inner.active])
    }

    fn ledger_day(&self, day: ChinaDay) -> Result<LedgerDay, StorageError> {
        let prefix = format!("{day}\0");
        let mut out = LedgerDay::new();
        for item in self.0.inner.ledger_days.scan_prefix(prefix.as_bytes()) {
            let (key, value) = item?;
            let key = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let Some((what, order)) = key.split_once('\0') else {
                continue;
            };
            let Some(what) = LineKind::parse(what) else {
                continue;
            };
            let fen = <[u8; 8]>::try_from(value.as_ref()).map_or(0, u64::from_be_bytes);
            out.insert((what, order.to_owned()), fen);
        }
        Ok(out)
    }

    fn save_reconciliation(&self, report: &Reconciliation) -> Result<(), StorageError> {
        self.0
            .inner
            .reconciliations
            .insert(report.date.to_string().as_bytes(), store(report)?)?;
        Ok(())
    }

    fn reconciliation(&self, day: ChinaDay) -> Result<Option<Reconciliation>, StorageError> {
        let day = day.to_string();
        match self.0.inner.reconciliations.get(day.as_bytes())? {
            Some(bytes) => load(&bytes, &day).map(Some),
            None => Ok(None),
        }
    }

    fn commit(&self) -> Committing {
        self.0.committing()
    }
}

impl SledLedger {
    /// The withdrawals an index lists under `prefix` (keys: the prefix,
    /// then the id), newest first, older than `before` when given, that
    /// `keep` takes, up to `limit`.
    fn through_index(
        &self,
        index: &::sled::Tree,
        prefix: Vec<u8>,
        before: Option<&WithdrawalId>,
        limit: usize,
        keep: &dyn Fn(&Withdrawal) -> bool,
    ) -> Result<Vec<Withdrawal>, StorageError> {
        let end = match before {
            Some(id) => [prefix.as_slice(), id.as_str().as_bytes()].concat(),
            None => [prefix.as_slice(), &[0xff]].concat(),
        };
        let mut out = Vec::with_capacity(limit.min(MAX_PAGE));
        for item in index.range(prefix.clone()..end).rev() {
            let (key, _) = item?;
            let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let Ok(id) = WithdrawalId::parse(&id) else {
                continue;
            };
            match self.withdrawal(&id)? {
                Some(w) if keep(&w) => out.push(w),
                _ => continue,
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Writes into the inbox every money event the orders in `trees` went
    /// through that is not posted yet; answers how many. One waiting in
    /// the inbox already is told twice: harmless, the second finds it
    /// posted.
    fn tell_unposted(&self, trees: &[&::sled::Tree]) -> Result<usize, StorageError> {
        let inner = &self.0.inner;
        let mut told = 0;
        for tree in trees {
            for item in tree.iter() {
                let (key, value) = item?;
                let order = decode_order(&value, &String::from_utf8_lossy(&key))?;
                for event in MoneyEvent::of_past(&order) {
                    if !self.is_posted(&event.key())? {
                        let seq = inner.ids.next(unix_ms());
                        inner
                            .ledger_inbox
                            .insert(seq.to_be_bytes(), store(&event)?)?;
                        told += 1;
                    }
                }
            }
        }
        Ok(told)
    }
}

fn abort(e: StorageError) -> ConflictableTransactionError<StorageError> {
    ConflictableTransactionError::Abort(e)
}

fn unwrap_tx(e: TransactionError<StorageError>) -> StorageError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

/// `courier`, a 0 byte, then `rest`: one courier's keys are one range.
pub(super) fn courier_key(courier: &OpenId, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(courier.as_str().len() + 1 + rest.len());
    key.extend_from_slice(courier.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(rest);
    key
}

/// The book's trees inside one transaction.
struct Book<'a> {
    postings: &'a TransactionalTree,
    balances: &'a TransactionalTree,
    entries: &'a TransactionalTree,
    /// What moved through WeChat Pay each China day (reconciliation).
    days: &'a TransactionalTree,
    inbox: &'a TransactionalTree,
    rates: &'a TransactionalTree,
}

/// `day`, then what moved and the order: one day is one key range.
pub(super) fn day_key(line: &DayLine) -> Vec<u8> {
    format!("{}\0{}\0{}", line.day, line.what, line.order).into_bytes()
}

type TxResult<T> = Result<T, ConflictableTransactionError<StorageError>>;

/// Moves `amount` fen into `account`'s balance, inside a transaction.
pub(super) fn move_balance<E>(
    balances: &TransactionalTree,
    account: &Account,
    amount: i64,
) -> Result<(), ConflictableTransactionError<E>> {
    let key = account.key();
    let balance = balance_of(balances.get(key.as_bytes())?) + amount;
    if balance == 0 {
        // An emptied escrow (or wallet) leaves no key behind.
        balances.remove(key.as_bytes())?;
    } else {
        balances.insert(key.as_bytes(), &balance.to_be_bytes())?;
    }
    Ok(())
}

/// A batch's records, encoded once (a transaction may run more than once).
struct Encoded {
    posted: Vec<Vec<u8>>,
    lines: Vec<Vec<u8>>,
}

impl Encoded {
    fn of(postings: &Postings) -> Result<Self, StorageError> {
        Ok(Self {
            posted: postings
                .posted
                .iter()
                .map(store)
                .collect::<Result<_, _>>()?,
            lines: postings
                .lines
                .iter()
                .map(|(_, line)| store(line))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl Book<'_> {
    /// Writes what the ledger decided.
    fn write(&self, postings: &Postings, encoded: &Encoded) -> TxResult<()> {
        for seq in &postings.taken {
            self.inbox.remove(&seq.to_be_bytes())?;
        }
        for (posted, bytes) in postings.posted.iter().zip(&encoded.posted) {
            self.postings
                .insert(posted.posting.key.as_bytes(), bytes.as_slice())?;
        }
        for (account, amount) in &postings.moves {
            move_balance(self.balances, account, *amount)?;
        }
        for ((account, line), bytes) in postings.lines.iter().zip(&encoded.lines) {
            self.entries
                .insert(entry_key(&account.key(), line.seq), bytes.as_slice())?;
        }
        for line in &postings.days {
            self.days.insert(day_key(line), &line.fen.to_be_bytes())?;
        }
        for (order, percent) in &postings.rates {
            self.rates.insert(order.as_str().as_bytes(), &[*percent])?;
        }
        Ok(())
    }
}
