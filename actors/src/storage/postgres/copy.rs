//! The whole database as items, for `lastmile store copy`: read kind by
//! kind through a cursor in one snapshot, written in one transaction per
//! batch with `ON CONFLICT DO NOTHING`, so a second copy writes nothing.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::Row;

use super::conn::{engine, params, refs, Param};
use super::orders::{order_params, INSERT_ORDER};
use super::people::{column, corrupt};
use super::{on, PgStore};
use crate::domain::{
    Account, ChinaDay, DayLine, IdempotencyKey, LineKind, ObjectKey, OpenId, OrderId, Posted,
    StoredObject, Visibility, WithdrawalId,
};
use crate::storage::copy::{Dump, Item, Kind, Reader};
use crate::storage::records::{courier_of, decode_order, encode_courier, load, store};
use crate::storage::StorageError;

/// A PostgreSQL store seen whole.
pub struct PgDump {
    store: PgStore,
    /// The connection inside the transaction of the kind being written:
    /// one transaction per kind, so the journal's postings may arrive in
    /// any order (the balances are judged at COMMIT).
    writer: Arc<Mutex<Option<deadpool_postgres::Object>>>,
}

impl PgDump {
    /// `store`, seen whole.
    pub fn new(store: PgStore) -> Self {
        Self {
            store,
            writer: Arc::new(Mutex::new(None)),
        }
    }
}

/// Where a kind lives: its columns, its rows (a table, maybe narrowed),
/// and its key order.
fn source(kind: Kind) -> (&'static str, &'static str, &'static str) {
    match kind {
        Kind::Orders => ("id, body", "orders", "id"),
        Kind::IdempotencyKeys => ("customer, key, order_id", "idempotency", "customer, key"),
        Kind::Payments => ("order_id, body", "payments", "order_id"),
        Kind::Sessions => ("token_hash, body", "sessions", "token_hash"),
        Kind::Blocks => ("openid, body", "blocks", "openid"),
        Kind::Operators => ("name, body", "operators", "name"),
        Kind::FormIds => (
            "openid, expires_at, id, body",
            "form_ids",
            "openid, expires_at, id",
        ),
        Kind::Grants => ("openid, template, left_n", "grants", "openid, template"),
        Kind::Tokens => ("key, body", "meta WHERE key = 'access_token'", ""),
        Kind::ShareCodes => ("scene, page, url", "share_codes", "scene, page"),
        Kind::Couriers => ("openid, body", "couriers", "openid"),
        Kind::CourierReleases => ("openid, day, n", "courier_releases", "openid, day"),
        Kind::Uploads => ("id, body", "uploads", "id"),
        Kind::UploadDays => ("openid, day, n", "upload_days", "openid, day"),
        Kind::Objects => (
            "key, public, content_type, bytes",
            "objects",
            "public DESC, key",
        ),
        Kind::Outbox => ("id, body", "outbox", "id"),
        Kind::LedgerInbox => ("seq, body", "ledger_inbox", "seq"),
        Kind::Postings => ("key, body", "ledger_postings", "key"),
        Kind::Statements => ("account, seq, body", "ledger_entries", "account, seq"),
        Kind::DayLines => (
            "day, what, order_id, fen",
            "ledger_days",
            "day, what, order_id",
        ),
        Kind::Rates => ("order_id, percent", "ledger_rates", "order_id"),
        Kind::Withdrawals => ("id, body", "withdrawals", "id"),
        Kind::WithdrawalKeys => (
            "courier, key, withdrawal",
            "withdrawal_keys",
            "courier, key",
        ),
        Kind::Reconciliations => ("day, body", "reconciliations", "day"),
    }
}

/// What a kind is read with, in key order.
fn select(kind: Kind) -> String {
    match source(kind) {
        (columns, rows, "") => format!("SELECT {columns} FROM {rows}"),
        (columns, rows, order) => format!("SELECT {columns} FROM {rows} ORDER BY {order}"),
    }
}

/// How many items of a kind the database holds.
fn count_sql(kind: Kind) -> String {
    format!("SELECT count(*) FROM {}", source(kind).1)
}

fn parsed<T, E>(value: Result<T, E>, what: &str) -> Result<T, StorageError> {
    value.map_err(|_| corrupt(what))
}

fn text(row: &Row, i: usize, what: &str) -> Result<String, StorageError> {
    column(row, i, what)
}

fn openid(row: &Row, i: usize, what: &str) -> Result<OpenId, StorageError> {
    parsed(OpenId::parse(&text(row, i, what)?), what)
}

fn day(row: &Row, i: usize, what: &str) -> Result<ChinaDay, StorageError> {
    parsed(ChinaDay::parse(&text(row, i, what)?), what)
}

fn count(row: &Row, i: usize, what: &str) -> Result<u32, StorageError> {
    parsed(u32::try_from(column::<i32>(row, i, what)?), what)
}

fn unsigned(row: &Row, i: usize, what: &str) -> Result<u64, StorageError> {
    parsed(u64::try_from(column::<i64>(row, i, what)?), what)
}

/// The item a row of `select(kind)` holds.
fn item_of(kind: Kind, row: &Row) -> Result<Item, StorageError> {
    let name = kind.name();
    let body = |i: usize| -> Result<&[u8], StorageError> { column(row, i, name) };
    Ok(match kind {
        Kind::Orders => Item::Order(Box::new(decode_order(body(1)?, &text(row, 0, name)?)?)),
        Kind::IdempotencyKeys => Item::IdempotencyKey {
            customer: openid(row, 0, name)?,
            key: parsed(IdempotencyKey::parse(&text(row, 1, name)?), name)?,
            order: parsed(OrderId::parse(&text(row, 2, name)?), name)?,
        },
        Kind::Payments => Item::Payment(load(body(1)?, name)?),
        Kind::Sessions => Item::Session {
            token_hash: parsed(<[u8; 32]>::try_from(body(0)?), name)?,
            session: load(body(1)?, name)?,
        },
        Kind::Blocks => Item::Block {
            openid: openid(row, 0, name)?,
            block: load(body(1)?, name)?,
        },
        Kind::Operators => Item::Operator(load(body(1)?, name)?),
        Kind::FormIds => Item::FormId {
            openid: openid(row, 0, name)?,
            expires_at: unsigned(row, 1, name)?,
            id: unsigned(row, 2, name)?,
            pooled: load(body(3)?, name)?,
        },
        Kind::Grants => Item::Grant {
            openid: openid(row, 0, name)?,
            template: text(row, 1, name)?,
            left: count(row, 2, name)?,
        },
        Kind::Tokens => Item::Token(load(body(1)?, name)?),
        Kind::ShareCodes => Item::ShareCode {
            scene: text(row, 0, name)?,
            page: text(row, 1, name)?,
            url: text(row, 2, name)?,
        },
        Kind::Couriers => Item::Courier(courier_of(body(1)?, &text(row, 0, name)?)?),
        Kind::CourierReleases => Item::CourierReleases {
            openid: openid(row, 0, name)?,
            day: day(row, 1, name)?,
            n: count(row, 2, name)?,
        },
        Kind::Uploads => Item::Upload(load(body(1)?, name)?),
        Kind::UploadDays => Item::UploadDay {
            openid: openid(row, 0, name)?,
            day: day(row, 1, name)?,
            n: count(row, 2, name)?,
        },
        Kind::Objects => Item::Object(StoredObject {
            key: parsed(ObjectKey::parse(&text(row, 0, name)?), name)?,
            visibility: if column(row, 1, name)? {
                Visibility::Public
            } else {
                Visibility::Private
            },
            content_type: text(row, 2, name)?,
            bytes: body(3)?.to_vec(),
        }),
        Kind::Outbox => Item::Outbox(load(body(1)?, name)?),
        Kind::LedgerInbox => Item::LedgerInbox {
            seq: unsigned(row, 0, name)?,
            event: load(body(1)?, name)?,
        },
        Kind::Postings => {
            let mut posted: Posted = load(body(1)?, name)?;
            posted.posting.key = text(row, 0, name)?;
            Item::Posting(posted)
        }
        Kind::Statements => {
            let mut entry: crate::domain::Entry = load(body(2)?, name)?;
            entry.seq = unsigned(row, 1, name)?;
            Item::Statement {
                account: Account::parse(&text(row, 0, name)?).ok_or_else(|| corrupt(name))?,
                entry,
            }
        }
        Kind::DayLines => Item::DayLine(DayLine {
            day: day(row, 0, name)?,
            what: LineKind::parse(&text(row, 1, name)?).ok_or_else(|| corrupt(name))?,
            order: parsed(OrderId::parse(&text(row, 2, name)?), name)?,
            fen: unsigned(row, 3, name)?,
        }),
        Kind::Rates => Item::Rate {
            order: parsed(OrderId::parse(&text(row, 0, name)?), name)?,
            percent: parsed(u8::try_from(column::<i16>(row, 1, name)?), name)?,
        },
        Kind::Withdrawals => Item::Withdrawal(load(body(1)?, name)?),
        Kind::WithdrawalKeys => Item::WithdrawalKey {
            courier: openid(row, 0, name)?,
            key: text(row, 1, name)?,
            withdrawal: parsed(WithdrawalId::parse(&text(row, 2, name)?), name)?,
        },
        Kind::Reconciliations => Item::Reconciliation(load(body(1)?, name)?),
    })
}

/// A statement and its parameters.
type Statement = (&'static str, Vec<Param>);

/// The insert that writes an item where it is missing.
fn insert(item: &Item) -> Result<Statement, StorageError> {
    Ok(match item {
        Item::Order(order) => (INSERT_ORDER, order_params(order)?),
        Item::IdempotencyKey {
            customer,
            key,
            order,
        } => (
            "INSERT INTO idempotency (customer, key, order_id, at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            params![
                customer.to_string(),
                key.as_str().to_owned(),
                order.to_string(),
                order.created_ms().map_or(0, |ms| ms as i64)
            ],
        ),
        Item::Payment(p) => (
            "INSERT INTO payments (order_id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![p.order_id.to_string(), store(p)?],
        ),
        Item::Session {
            token_hash,
            session,
        } => (
            "INSERT INTO sessions (token_hash, expires_ms, body) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            params![
                token_hash.to_vec(),
                crate::domain::unix_ms(session.expires_at),
                store(session)?
            ],
        ),
        Item::Block { openid, block } => (
            "INSERT INTO blocks (openid, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![openid.to_string(), store(block)?],
        ),
        Item::Operator(o) => (
            "INSERT INTO operators (name, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![o.name.as_str().to_owned(), store(o)?],
        ),
        Item::FormId {
            openid,
            expires_at,
            id,
            pooled,
        } => (
            "INSERT INTO form_ids (openid, expires_at, id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            params![
                openid.to_string(),
                parsed(i64::try_from(*expires_at), "form_ids")?,
                parsed(i64::try_from(*id), "form_ids")?,
                store(pooled)?
            ],
        ),
        Item::Grant {
            openid,
            template,
            left,
        } => (
            "INSERT INTO grants (openid, template, left_n) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            params![
                openid.to_string(),
                template.clone(),
                parsed(i32::try_from(*left), "grants")?
            ],
        ),
        Item::Token(token) => (
            "INSERT INTO meta (key, body) VALUES ('access_token', $1) ON CONFLICT DO NOTHING",
            params![store(token)?],
        ),
        Item::ShareCode { scene, page, url } => (
            "INSERT INTO share_codes (scene, page, url) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            params![scene.clone(), page.clone(), url.clone()],
        ),
        Item::Courier(c) => (
            "INSERT INTO couriers (openid, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![c.openid.to_string(), encode_courier(c)?],
        ),
        Item::CourierReleases { openid, day, n } => (
            "INSERT INTO courier_releases (openid, day, n) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            params![
                openid.to_string(),
                day.to_string(),
                parsed(i32::try_from(*n), "courier_releases")?
            ],
        ),
        Item::Upload(u) => (
            "INSERT INTO uploads (id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![u.id.as_str().to_owned(), store(u)?],
        ),
        Item::UploadDay { openid, day, n } => (
            "INSERT INTO upload_days (openid, day, n) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            params![
                openid.to_string(),
                day.to_string(),
                parsed(i32::try_from(*n), "upload_days")?
            ],
        ),
        Item::Object(o) => (
            "INSERT INTO objects (public, key, content_type, bytes) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            params![
                o.visibility == Visibility::Public,
                o.key.to_string(),
                o.content_type.clone(),
                o.bytes.clone()
            ],
        ),
        Item::Outbox(entry) => (
            "INSERT INTO outbox (id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![parsed(i64::try_from(entry.id), "outbox")?, store(entry)?],
        ),
        Item::LedgerInbox { seq, event } => (
            "INSERT INTO ledger_inbox (seq, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![parsed(i64::try_from(*seq), "ledger_inbox")?, store(event)?],
        ),
        Item::Posting(p) => (
            "INSERT INTO ledger_postings (key, at_ms, body) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            params![p.posting.key.clone(), p.at_unix_ms, store(p)?],
        ),
        Item::Statement { account, entry } => (
            "INSERT INTO ledger_entries (account, seq, body) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            params![
                account.key(),
                parsed(i64::try_from(entry.seq), "ledger_entries")?,
                store(entry)?
            ],
        ),
        Item::DayLine(line) => (
            "INSERT INTO ledger_days (day, what, order_id, fen) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            params![
                line.day.to_string(),
                line.what.as_str(),
                line.order.to_string(),
                parsed(i64::try_from(line.fen), "ledger_days")?
            ],
        ),
        Item::Rate { order, percent } => (
            "INSERT INTO ledger_rates (order_id, percent) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![order.to_string(), i16::from(*percent)],
        ),
        Item::Withdrawal(w) => (
            "INSERT INTO withdrawals (id, courier, status, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            params![
                w.id.as_str().to_owned(),
                w.courier.to_string(),
                w.status.as_str(),
                store(w)?
            ],
        ),
        Item::WithdrawalKey {
            courier,
            key,
            withdrawal,
        } => (
            "INSERT INTO withdrawal_keys (courier, key, withdrawal) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            params![
                courier.to_string(),
                key.clone(),
                withdrawal.as_str().to_owned()
            ],
        ),
        Item::Reconciliation(r) => (
            "INSERT INTO reconciliations (day, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            params![r.date.to_string(), store(r)?],
        ),
    })
}

/// A posting's legs, written only with the posting (the database moves the
/// balances and checks that they sum to zero).
fn legs(posted: &Posted) -> Vec<Statement> {
    posted
        .posting
        .legs
        .iter()
        .map(|leg| -> Statement {
            (
                "INSERT INTO ledger_legs (posting, account, amount) VALUES ($1, $2, $3)",
                params![posted.posting.key.clone(), leg.account.key(), leg.amount],
            )
        })
        .collect()
}

/// A connection inside one read-only snapshot, with the cursor of the kind
/// being read.
struct PgReader {
    store: PgStore,
    client: Arc<Mutex<deadpool_postgres::Object>>,
    kind: Option<Kind>,
}

impl Drop for PgReader {
    /// Ends the snapshot before the connection goes back to the pool.
    fn drop(&mut self) {
        let client = self.client.clone();
        self.store.inner.handle.spawn(async move {
            let _ = client.lock().await.batch_execute("ROLLBACK").await;
        });
    }
}

impl Reader for PgReader {
    fn next_batch(&mut self, kind: Kind, max: usize) -> Result<Vec<Item>, StorageError> {
        let client = self.client.clone();
        let declare = (self.kind != Some(kind)).then(|| {
            let close = if self.kind.is_some() {
                "CLOSE copy_cursor; "
            } else {
                ""
            };
            format!(
                "{close}DECLARE copy_cursor NO SCROLL CURSOR FOR {}",
                select(kind)
            )
        });
        self.kind = Some(kind);
        let rows = on(&self.store.inner.handle, async move {
            let client = client.lock().await;
            if let Some(declare) = declare {
                client.batch_execute(&declare).await.map_err(engine)?;
            }
            client
                .query(&format!("FETCH {max} FROM copy_cursor"), &[])
                .await
                .map_err(engine)
        })??;
        rows.iter().map(|row| item_of(kind, row)).collect()
    }
}

impl Dump for PgDump {
    fn reader(&self) -> Result<Box<dyn Reader + '_>, StorageError> {
        let pool = self.store.inner.pool.clone();
        let client = on(&self.store.inner.handle, async move {
            let client = pool.get().await.map_err(engine)?;
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(engine)?;
            Ok::<_, StorageError>(client)
        })??;
        Ok(Box::new(PgReader {
            store: self.store.clone(),
            client: Arc::new(Mutex::new(client)),
            kind: None,
        }))
    }

    fn import(&self, items: &[Item]) -> Result<usize, StorageError> {
        let mut statements = Vec::with_capacity(items.len());
        for item in items {
            let legs = match item {
                Item::Posting(posted) => legs(posted),
                _ => Vec::new(),
            };
            statements.push((insert(item)?, legs));
        }
        let (pool, writer) = (self.store.inner.pool.clone(), self.writer.clone());
        on(&self.store.inner.handle, async move {
            let mut writer = writer.lock().await;
            if writer.is_none() {
                let client = pool.get().await.map_err(engine)?;
                client.batch_execute("BEGIN").await.map_err(engine)?;
                *writer = Some(client);
            }
            let Some(client) = writer.as_ref() else {
                return Err(StorageError::Closed);
            };
            let mut written = 0;
            for ((sql, params), legs) in &statements {
                let inserted = client.execute(*sql, &refs(params)).await.map_err(engine)?;
                if inserted == 0 {
                    continue;
                }
                written += 1;
                for (sql, params) in legs {
                    client.execute(*sql, &refs(params)).await.map_err(engine)?;
                }
            }
            Ok(written)
        })?
    }

    fn finish(&self) -> Result<(), StorageError> {
        let writer = self.writer.clone();
        on(&self.store.inner.handle, async move {
            match writer.lock().await.take() {
                Some(client) => client.batch_execute("COMMIT").await.map_err(engine),
                None => Ok(()),
            }
        })?
    }

    fn count(&self, kind: Kind) -> Result<u64, StorageError> {
        let pool = self.store.inner.pool.clone();
        let n: i64 = on(&self.store.inner.handle, async move {
            let client = pool.get().await.map_err(engine)?;
            let row = client
                .query_one(count_sql(kind).as_str(), &[])
                .await
                .map_err(engine)?;
            row.try_get::<_, i64>(0).map_err(engine)
        })??;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
