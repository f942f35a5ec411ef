//! The whole database as items, for `lastmile store copy`: read kind by
//! kind through a cursor in one snapshot, written in one transaction per
//! batch with `ON CONFLICT DO NOTHING`, so a second copy writes nothing.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::conn::engine;
use super::people::{column, corrupt};
use super::{on, PgStore};
use crate::domain::{
    Account, ChinaDay, DayLine, IdempotencyKey, LineKind, ObjectKey, OpenId, OrderId, Posted,
    StoredObject, Visibility, WithdrawalId,
};
use crate::storage::copy::{Dump, Item, Kind, Reader};
use crate::storage::records::{
    courier_of, decode_order, encode_courier, encode_order, load, store,
};
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

/// A tokio-postgres failure with the server's own words (its `Display`
/// says only "db error").
fn db(e: tokio_postgres::Error) -> StorageError {
    match e.as_db_error() {
        Some(server) => StorageError::Engine(server.to_string().into()),
        None => engine(e),
    }
}

/// What a kind is read with, in key order.
fn select(kind: Kind) -> &'static str {
    match kind {
        Kind::Orders => "SELECT id, body FROM orders ORDER BY id",
        Kind::IdempotencyKeys => {
            "SELECT customer, key, order_id FROM idempotency ORDER BY customer, key"
        }
        Kind::Payments => "SELECT order_id, body FROM payments ORDER BY order_id",
        Kind::Sessions => "SELECT token_hash, body FROM sessions ORDER BY token_hash",
        Kind::Blocks => "SELECT openid, body FROM blocks ORDER BY openid",
        Kind::Operators => "SELECT name, body FROM operators ORDER BY name",
        Kind::FormIds => {
            "SELECT openid, expires_at, id, body FROM form_ids ORDER BY openid, expires_at, id"
        }
        Kind::Grants => "SELECT openid, template, left_n FROM grants ORDER BY openid, template",
        Kind::Tokens => "SELECT key, body FROM meta WHERE key = 'access_token'",
        Kind::ShareCodes => "SELECT scene, page, url FROM share_codes ORDER BY scene, page",
        Kind::Couriers => "SELECT openid, body FROM couriers ORDER BY openid",
        Kind::CourierReleases => "SELECT openid, day, n FROM courier_releases ORDER BY openid, day",
        Kind::Uploads => "SELECT id, body FROM uploads ORDER BY id",
        Kind::UploadDays => "SELECT openid, day, n FROM upload_days ORDER BY openid, day",
        Kind::Objects => {
            "SELECT key, public, content_type, bytes FROM objects ORDER BY public DESC, key"
        }
        Kind::Outbox => "SELECT id, body FROM outbox ORDER BY id",
        Kind::LedgerInbox => "SELECT seq, body FROM ledger_inbox ORDER BY seq",
        Kind::Postings => "SELECT key, body FROM ledger_postings ORDER BY key",
        Kind::Statements => "SELECT account, seq, body FROM ledger_entries ORDER BY account, seq",
        Kind::DayLines => {
            "SELECT day, what, order_id, fen FROM ledger_days ORDER BY day, what, order_id"
        }
        Kind::Rates => "SELECT order_id, percent FROM ledger_rates ORDER BY order_id",
        Kind::Withdrawals => "SELECT id, body FROM withdrawals ORDER BY id",
        Kind::WithdrawalKeys => {
            "SELECT courier, key, withdrawal FROM withdrawal_keys ORDER BY courier, key"
        }
        Kind::Reconciliations => "SELECT day, body FROM reconciliations ORDER BY day",
    }
}

/// How many items of a kind the database holds.
fn count_sql(kind: Kind) -> &'static str {
    match kind {
        Kind::Orders => "SELECT count(*) FROM orders",
        Kind::IdempotencyKeys => "SELECT count(*) FROM idempotency",
        Kind::Payments => "SELECT count(*) FROM payments",
        Kind::Sessions => "SELECT count(*) FROM sessions",
        Kind::Blocks => "SELECT count(*) FROM blocks",
        Kind::Operators => "SELECT count(*) FROM operators",
        Kind::FormIds => "SELECT count(*) FROM form_ids",
        Kind::Grants => "SELECT count(*) FROM grants",
        Kind::Tokens => "SELECT count(*) FROM meta WHERE key = 'access_token'",
        Kind::ShareCodes => "SELECT count(*) FROM share_codes",
        Kind::Couriers => "SELECT count(*) FROM couriers",
        Kind::CourierReleases => "SELECT count(*) FROM courier_releases",
        Kind::Uploads => "SELECT count(*) FROM uploads",
        Kind::UploadDays => "SELECT count(*) FROM upload_days",
        Kind::Objects => "SELECT count(*) FROM objects",
        Kind::Outbox => "SELECT count(*) FROM outbox",
        Kind::LedgerInbox => "SELECT count(*) FROM ledger_inbox",
        Kind::Postings => "SELECT count(*) FROM ledger_postings",
        Kind::Statements => "SELECT count(*) FROM ledger_entries",
        Kind::DayLines => "SELECT count(*) FROM ledger_days",
        Kind::Rates => "SELECT count(*) FROM ledger_rates",
        Kind::Withdrawals => "SELECT count(*) FROM withdrawals",
        Kind::WithdrawalKeys => "SELECT count(*) FROM withdrawal_keys",
        Kind::Reconciliations => "SELECT count(*) FROM reconciliations",
    }
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
type Statement = (&'static str, Vec<Box<dyn ToSql + Send + Sync>>);

macro_rules! args {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as Box<dyn ToSql + Send + Sync>),*]
    };
}

/// The insert that writes an item where it is missing.
fn insert(item: &Item) -> Result<Statement, StorageError> {
    Ok(match item {
        Item::Order(order) => {
            let status = order.status();
            (
                "INSERT INTO orders (id, customer, created_ms, status, active, body) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                args![
                    order.id.to_string(),
                    order.customer.to_string(),
                    order.id.created_ms().map_or(0, |ms| ms as i64),
                    status.as_str(),
                    !status.is_terminal(),
                    encode_order(order.as_ref())?
                ],
            )
        }
        Item::IdempotencyKey {
            customer,
            key,
            order,
        } => (
            "INSERT INTO idempotency (customer, key, order_id, at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            args![
                customer.to_string(),
                key.as_str().to_owned(),
                order.to_string(),
                order.created_ms().map_or(0, |ms| ms as i64)
            ],
        ),
        Item::Payment(p) => (
            "INSERT INTO payments (order_id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![p.order_id.to_string(), store(p)?],
        ),
        Item::Session {
            token_hash,
            session,
        } => (
            "INSERT INTO sessions (token_hash, expires_ms, body) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            args![
                token_hash.to_vec(),
                crate::domain::unix_ms(session.expires_at),
                store(session)?
            ],
        ),
        Item::Block { openid, block } => (
            "INSERT INTO blocks (openid, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![openid.to_string(), store(block)?],
        ),
        Item::Operator(o) => (
            "INSERT INTO operators (name, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![o.name.as_str().to_owned(), store(o)?],
        ),
        Item::FormId {
            openid,
            expires_at,
            id,
            pooled,
        } => (
            "INSERT INTO form_ids (openid, expires_at, id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            args![
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
            args![
                openid.to_string(),
                template.clone(),
                parsed(i32::try_from(*left), "grants")?
            ],
        ),
        Item::Token(token) => (
            "INSERT INTO meta (key, body) VALUES ('access_token', $1) ON CONFLICT DO NOTHING",
            args![store(token)?],
        ),
        Item::ShareCode { scene, page, url } => (
            "INSERT INTO share_codes (scene, page, url) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            args![scene.clone(), page.clone(), url.clone()],
        ),
        Item::Courier(c) => (
            "INSERT INTO couriers (openid, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![c.openid.to_string(), encode_courier(c)?],
        ),
        Item::CourierReleases { openid, day, n } => (
            "INSERT INTO courier_releases (openid, day, n) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            args![
                openid.to_string(),
                day.to_string(),
                parsed(i32::try_from(*n), "courier_releases")?
            ],
        ),
        Item::Upload(u) => (
            "INSERT INTO uploads (id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![u.id.as_str().to_owned(), store(u)?],
        ),
        Item::UploadDay { openid, day, n } => (
            "INSERT INTO upload_days (openid, day, n) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            args![
                openid.to_string(),
                day.to_string(),
                parsed(i32::try_from(*n), "upload_days")?
            ],
        ),
        Item::Object(o) => (
            "INSERT INTO objects (public, key, content_type, bytes) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            args![
                o.visibility == Visibility::Public,
                o.key.to_string(),
                o.content_type.clone(),
                o.bytes.clone()
            ],
        ),
        Item::Outbox(entry) => (
            "INSERT INTO outbox (id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![parsed(i64::try_from(entry.id), "outbox")?, store(entry)?],
        ),
        Item::LedgerInbox { seq, event } => (
            "INSERT INTO ledger_inbox (seq, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![parsed(i64::try_from(*seq), "ledger_inbox")?, store(event)?],
        ),
        Item::Posting(p) => (
            "INSERT INTO ledger_postings (key, at_ms, body) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            args![p.posting.key.clone(), p.at_unix_ms, store(p)?],
        ),
        Item::Statement { account, entry } => (
            "INSERT INTO ledger_entries (account, seq, body) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            args![
                account.key(),
                parsed(i64::try_from(entry.seq), "ledger_entries")?,
                store(entry)?
            ],
        ),
        Item::DayLine(line) => (
            "INSERT INTO ledger_days (day, what, order_id, fen) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            args![
                line.day.to_string(),
                line.what.as_str(),
                line.order.to_string(),
                parsed(i64::try_from(line.fen), "ledger_days")?
            ],
        ),
        Item::Rate { order, percent } => (
            "INSERT INTO ledger_rates (order_id, percent) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![order.to_string(), i16::from(*percent)],
        ),
        Item::Withdrawal(w) => (
            "INSERT INTO withdrawals (id, courier, status, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            args![
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
            args![
                courier.to_string(),
                key.clone(),
                withdrawal.as_str().to_owned()
            ],
        ),
        Item::Reconciliation(r) => (
            "INSERT INTO reconciliations (day, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![r.date.to_string(), store(r)?],
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
                args![posted.posting.key.clone(), leg.account.key(), leg.amount],
            )
        })
        .collect()
}

fn refs(params: &[Box<dyn ToSql + Send + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
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
                client.batch_execute("BEGIN").await.map_err(db)?;
                *writer = Some(client);
            }
            let Some(client) = writer.as_ref() else {
                return Err(StorageError::Closed);
            };
            let mut written = 0;
            for ((sql, params), legs) in &statements {
                let inserted = client.execute(*sql, &refs(params)).await.map_err(db)?;
                if inserted == 0 {
                    continue;
                }
                written += 1;
                for (sql, params) in legs {
                    client.execute(*sql, &refs(params)).await.map_err(db)?;
                }
            }
            Ok(written)
        })?
    }

    fn finish(&self) -> Result<(), StorageError> {
        let writer = self.writer.clone();
        on(&self.store.inner.handle, async move {
            match writer.lock().await.take() {
                Some(client) => client.batch_execute("COMMIT").await.map_err(db),
                None => Ok(()),
            }
        })?
    }

    fn count(&self, kind: Kind) -> Result<u64, StorageError> {
        let pool = self.store.inner.pool.clone();
        let n: i64 = on(&self.store.inner.handle, async move {
            let client = pool.get().await.map_err(engine)?;
            let row = client
                .query_one(count_sql(kind), &[])
                .await
                .map_err(engine)?;
            row.try_get::<_, i64>(0).map_err(engine)
        })??;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
