//! The ledger's tables. Balances are the database's: a trigger moves them
//! with every leg inserted, and refuses a posting whose legs do not sum to
//! zero or a balance below zero (but clearing's) when the transaction
//! commits; the ledger's `moves` are what the trigger derives.

use std::collections::{HashMap, HashSet};

use super::conn::{params, Conn, Statements};
use super::people::{body, column, corrupt};
use crate::domain::{
    Account, ChinaDay, Entry, IdempotencyKey, Journal, LedgerDay, LineKind, MoneyEvent, OpenId,
    Order, OrderId, Posted, Postings, Reconciliation, Sequence, Withdrawal, WithdrawalId,
    WithdrawalStatus,
};
use crate::storage::records::{decode_order, store};
use crate::storage::{Committing, LedgerRepo, StorageError};

/// Withdrawals read per query while a filter picks a page.
const PAGE: i64 = 200;

/// The ledger's tables.
#[derive(Clone)]
pub struct PgLedger {
    pub(super) conn: Conn,
    pub(super) ids: Sequence,
}

/// The statements that store a batch of postings.
fn posting_statements(postings: &Postings) -> Result<Statements, StorageError> {
    let mut out: Statements = Vec::new();
    if !postings.taken.is_empty() {
        let taken: Vec<i64> = postings.taken.iter().map(|s| *s as i64).collect();
        out.push(
            (
                "DELETE FROM ledger_inbox WHERE seq = ANY($1)",
                params![taken],
            )
                .into(),
        );
    }
    for posted in &postings.posted {
        let key = posted.posting.key.clone();
        out.push(
            (
                "INSERT INTO ledger_postings (key, at_ms, body) VALUES ($1, $2, $3)",
                params![key.clone(), posted.at_unix_ms, store(posted)?],
            )
                .into(),
        );
        for leg in &posted.posting.legs {
            out.push(
                (
                    "INSERT INTO ledger_legs (posting, account, amount) VALUES ($1, $2, $3)",
                    params![key.clone(), leg.account.key(), leg.amount],
                )
                    .into(),
            );
        }
    }
    for (account, line) in &postings.lines {
        out.push(
            (
                "INSERT INTO ledger_entries (account, seq, body) VALUES ($1, $2, $3)",
                params![account.key(), line.seq as i64, store(line)?],
            )
                .into(),
        );
    }
    for line in &postings.days {
        out.push(
            (
                "INSERT INTO ledger_days (day, what, order_id, fen) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (day, what, order_id) DO UPDATE SET fen = EXCLUDED.fen",
                params![
                    line.day.to_string(),
                    line.what.as_str(),
                    line.order.to_string(),
                    i64::try_from(line.fen).unwrap_or(i64::MAX)
                ],
            )
                .into(),
        );
    }
    for (order, percent) in &postings.rates {
        out.push(
            (
                "INSERT INTO ledger_rates (order_id, percent) VALUES ($1, $2) \
             ON CONFLICT (order_id) DO UPDATE SET percent = EXCLUDED.percent",
                params![order.to_string(), i16::from(*percent)],
            )
                .into(),
        );
    }
    Ok(out)
}

fn withdrawals_of_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<Withdrawal>, StorageError> {
    rows.iter().map(|row| body(row, "withdrawals")).collect()
}

impl LedgerRepo for PgLedger {
    fn inbox(&self, limit: usize) -> Result<Vec<(u64, MoneyEvent)>, StorageError> {
        let rows = self.conn.read(
            "SELECT seq, body FROM ledger_inbox ORDER BY seq LIMIT $1",
            params![super::limit(limit)],
        )?;
        rows.iter()
            .map(|row| {
                let seq: i64 = column(row, 0, "ledger_inbox")?;
                Ok((seq as u64, body(row, "ledger_inbox")?))
            })
            .collect()
    }

    fn write_postings(&self, postings: &Postings) -> Result<(), StorageError> {
        self.conn.write_all(posting_statements(postings)?)
    }

    fn rates_of(&self, orders: &[OrderId]) -> Result<Vec<Option<u8>>, StorageError> {
        let ids: Vec<String> = orders.iter().map(|o| o.to_string()).collect();
        let rows = self.conn.read(
            "SELECT order_id, percent FROM ledger_rates WHERE order_id = ANY($1)",
            params![ids],
        )?;
        let mut rates = HashMap::new();
        for row in &rows {
            let order: String = column(row, 0, "ledger_rates")?;
            let percent: i16 = column(row, 1, "ledger_rates")?;
            rates.insert(
                order,
                u8::try_from(percent).map_err(|_| corrupt("ledger_rates"))?,
            );
        }
        Ok(orders
            .iter()
            .map(|o| rates.get(o.as_str()).copied())
            .collect())
    }

    fn ids(&self) -> Sequence {
        self.ids.clone()
    }

    fn save_withdrawal(
        &self,
        withdrawal: &Withdrawal,
        postings: &Postings,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StorageError> {
        let mut statements: Statements = vec![(
            "INSERT INTO withdrawals (id, courier, status, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body",
            params![
                withdrawal.id.as_str().to_owned(),
                withdrawal.courier.to_string(),
                withdrawal.status.as_str(),
                store(withdrawal)?
            ],
        )
            .into()];
        if let Some(key) = key {
            statements.push(
                (
                    "INSERT INTO withdrawal_keys (courier, key, withdrawal) VALUES ($1, $2, $3) \
                 ON CONFLICT (courier, key) DO UPDATE SET withdrawal = EXCLUDED.withdrawal",
                    params![
                        withdrawal.courier.to_string(),
                        key.as_str().to_owned(),
                        withdrawal.id.as_str().to_owned()
                    ],
                )
                    .into(),
            );
        }
        statements.extend(posting_statements(postings)?);
        self.conn.write_all(statements)
    }

    fn withdrawal(&self, id: &WithdrawalId) -> Result<Option<Withdrawal>, StorageError> {
        let rows = self.conn.read(
            "SELECT body FROM withdrawals WHERE id = $1",
            params![id.as_str().to_owned()],
        )?;
        Ok(withdrawals_of_rows(&rows)?.pop())
    }

    fn withdrawal_by_key(
        &self,
        courier: &OpenId,
        key: &IdempotencyKey,
    ) -> Result<Option<Withdrawal>, StorageError> {
        let rows = self.conn.read(
            "SELECT w.body FROM withdrawal_keys k JOIN withdrawals w ON w.id = k.withdrawal \
             WHERE k.courier = $1 AND k.key = $2",
            params![courier.to_string(), key.as_str().to_owned()],
        )?;
        Ok(withdrawals_of_rows(&rows)?.pop())
    }

    fn withdrawals_of(
        &self,
        courier: &OpenId,
        before: Option<&WithdrawalId>,
        limit: usize,
    ) -> Result<Vec<Withdrawal>, StorageError> {
        let rows = self.conn.read(
            "SELECT body FROM withdrawals WHERE courier = $1 AND ($2::text IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
            params![
                courier.to_string(),
                before.map(|b| b.as_str().to_owned()),
                super::limit(limit)
            ],
        )?;
        withdrawals_of_rows(&rows)
    }

    fn withdrawals(
        &self,
        status: Option<WithdrawalStatus>,
        before: Option<&WithdrawalId>,
        limit: usize,
        keep: &dyn Fn(&Withdrawal) -> bool,
    ) -> Result<Vec<Withdrawal>, StorageError> {
        let mut out = Vec::new();
        let mut cursor = before.map(|b| b.as_str().to_owned());
        loop {
            let rows = self.conn.read(
                "SELECT body FROM withdrawals WHERE ($1::text IS NULL OR status = $1) \
                 AND ($2::text IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
                params![status.map(|s| s.as_str()), cursor.clone(), PAGE],
            )?;
            let page = withdrawals_of_rows(&rows)?;
            let full = page.len() as i64 == PAGE;
            cursor = page.last().map(|w| w.id.as_str().to_owned());
            for w in page {
                if keep(&w) {
                    out.push(w);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    fn index_withdrawal_statuses(&self) -> Result<usize, StorageError> {
        // The table's own index: nothing to build.
        Ok(0)
    }

    fn is_posted(&self, key: &str) -> Result<bool, StorageError> {
        let rows = self.conn.read(
            "SELECT 1 FROM ledger_postings WHERE key = $1",
            params![key.to_owned()],
        )?;
        Ok(!rows.is_empty())
    }

    fn posted_among(&self, keys: &[String]) -> Result<HashSet<String>, StorageError> {
        let rows = self.conn.read(
            "SELECT key FROM ledger_postings WHERE key = ANY($1)",
            params![keys.to_vec()],
        )?;
        rows.iter()
            .map(|row| column(row, 0, "ledger_postings"))
            .collect()
    }

    fn balance(&self, account: &Account) -> Result<i64, StorageError> {
        let rows = self.conn.read(
            "SELECT fen FROM ledger_balances WHERE account = $1",
            params![account.key()],
        )?;
        rows.first()
            .map_or(Ok(0), |row| column(row, 0, "ledger_balances"))
    }

    fn journal(&self) -> Result<Journal, StorageError> {
        let rows = self.conn.read(
            "SELECT key, body FROM ledger_postings ORDER BY key",
            params![],
        )?;
        let mut journal = Journal::default();
        for row in &rows {
            let key: String = column(row, 0, "ledger_postings")?;
            let mut posted: Posted = body(row, &key)?;
            posted.posting.key = key;
            journal.add(&posted.posting);
        }
        Ok(journal)
    }

    fn balances(&self) -> Result<Vec<(Account, i64)>, StorageError> {
        let rows = self.conn.read(
            "SELECT account, fen FROM ledger_balances ORDER BY account",
            params![],
        )?;
        rows.iter()
            .map(|row| {
                let name: String = column(row, 0, "ledger_balances")?;
                let account = Account::parse(&name).ok_or_else(|| corrupt(&name))?;
                Ok((account, column(row, 1, &name)?))
            })
            .collect()
    }

    fn statement(
        &self,
        account: &Account,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let rows = self.conn.read(
            "SELECT seq, body FROM ledger_entries WHERE account = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3",
            params![
                account.key(),
                before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64),
                super::limit(limit)
            ],
        )?;
        rows.iter()
            .map(|row| {
                let seq: i64 = column(row, 0, "ledger_entries")?;
                let mut entry: Entry = body(row, "ledger_entries")?;
                entry.seq = seq as u64;
                Ok(entry)
            })
            .collect()
    }

    fn migrate_orders(&self) -> Result<usize, StorageError> {
        let marked = self.conn.read(
            "SELECT 1 FROM meta WHERE key = 'ledger_migrated'",
            params![],
        )?;
        if !marked.is_empty() {
            return Ok(0);
        }
        let told = self.tell_unposted("SELECT id, body FROM orders ORDER BY id")?;
        self.conn.write(
            "INSERT INTO meta (key, body) VALUES ('ledger_migrated', '\\x01') \
             ON CONFLICT (key) DO NOTHING",
            params![],
        )?;
        Ok(told)
    }

    fn tell_active(&self) -> Result<usize, StorageError> {
        self.tell_unposted("SELECT id, body FROM orders WHERE active ORDER BY id")
    }

    fn ledger_day(&self, day: ChinaDay) -> Result<LedgerDay, StorageError> {
        let rows = self.conn.read(
            "SELECT what, order_id, fen FROM ledger_days WHERE day = $1",
            params![day.to_string()],
        )?;
        let mut out = LedgerDay::new();
        for row in &rows {
            let what: String = column(row, 0, "ledger_days")?;
            let Some(what) = LineKind::parse(&what) else {
                continue;
            };
            let order: String = column(row, 1, "ledger_days")?;
            let fen: i64 = column(row, 2, "ledger_days")?;
            out.insert((what, order), fen.max(0) as u64);
        }
        Ok(out)
    }

    fn save_reconciliation(&self, report: &Reconciliation) -> Result<(), StorageError> {
        self.conn.write(
            "INSERT INTO reconciliations (day, body) VALUES ($1, $2) \
             ON CONFLICT (day) DO UPDATE SET body = EXCLUDED.body",
            params![report.date.to_string(), store(report)?],
        )
    }

    fn reconciliation(&self, day: ChinaDay) -> Result<Option<Reconciliation>, StorageError> {
        let rows = self.conn.read(
            "SELECT body FROM reconciliations WHERE day = $1",
            params![day.to_string()],
        )?;
        rows.first()
            .map(|row| body(row, "reconciliations"))
            .transpose()
    }

    fn commit(&self) -> Committing {
        self.conn.commit()
    }
}

impl PgLedger {
    /// Writes into the inbox every money event of the orders `query` reads
    /// that is not posted yet; answers how many.
    fn tell_unposted(&self, query: &'static str) -> Result<usize, StorageError> {
        let rows = self.conn.read(query, params![])?;
        let mut told = 0;
        for row in &rows {
            let id: String = column(row, 0, "orders")?;
            let order: Order = decode_order(column(row, 1, &id)?, &id)?;
            for event in MoneyEvent::of_past(&order) {
                if self.is_posted(&event.key())? {
                    continue;
                }
                let seq = self.ids.next(super::now_ms());
                self.conn.write(
                    "INSERT INTO ledger_inbox (seq, body) VALUES ($1, $2) ON CONFLICT (seq) DO NOTHING",
                    params![seq as i64, store(&event)?],
                )?;
                told += 1;
            }
        }
        Ok(told)
    }
}
