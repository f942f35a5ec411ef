//! The small owners' repositories: sessions and blocks, operators,
//! couriers, the access token, share codes, payments, uploads, the form-id
//! pool and the outbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio_postgres::Row;

use super::conn::{params, Conn};
use crate::domain::{
    Block, ChinaDay, CourierProfile, ObjectKey, OpenId, OperatorRecord, OrderId, OutboxEntry,
    PaymentRecord, PooledId, Session, StoredObject, StoredToken, Upload, UploadId, Visibility,
};
use crate::storage::records::{courier_of, encode_courier, load, store, Stored};
use crate::storage::{
    Committing, CourierRepo, FormIdRepo, ObjectRepo, OperatorRepo, OutboxRepo, PaymentRepo,
    SessionRepo, ShareCodeRepo, StorageError, TokenRepo, UploadRepo,
};

/// The `body` column of `row` as a `T`.
pub(super) fn body<T: Stored>(row: &Row, key: &str) -> Result<T, StorageError> {
    let bytes: &[u8] = row.try_get("body").map_err(|_| corrupt(key))?;
    load(bytes, key)
}

/// Column `i` of `row`.
pub(super) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
    key: &str,
) -> Result<T, StorageError> {
    row.try_get(i).map_err(|_| corrupt(key))
}

pub(super) fn corrupt(key: &str) -> StorageError {
    StorageError::Corrupt {
        key: key.to_owned(),
    }
}

/// The first row's value, if any.
fn first<T: Stored>(rows: Vec<Row>, key: &str) -> Result<Option<T>, StorageError> {
    rows.first().map(|row| body(row, key)).transpose()
}

/// What a `SELECT count(*)` answers (0 when it cannot be read: the
/// callers' traits answer a plain number).
fn count(conn: &Conn, sql: &'static str, params: Vec<super::conn::Param>) -> usize {
    conn.read(sql, params)
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.try_get::<_, i64>(0).ok()))
        .map_or(0, |n| usize::try_from(n).unwrap_or(0))
}

/// A count kept per user and China day.
fn count_on(
    conn: &Conn,
    read: &'static str,
    owner: &OpenId,
    day: ChinaDay,
) -> Result<u32, StorageError> {
    let rows = conn.read(read, params![owner.to_string(), day.to_string()])?;
    let n: Option<i32> = rows
        .first()
        .map(|r| column(r, 0, "day count"))
        .transpose()?;
    Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(0)))
}

/// The sessions actor's tables.
#[derive(Clone)]
pub struct PgSessions(pub(super) Conn);

impl SessionRepo for PgSessions {
    fn put_session(&self, token_hash: &[u8; 32], session: &Session) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO sessions (token_hash, expires_ms, body) VALUES ($1, $2, $3) \
             ON CONFLICT (token_hash) DO UPDATE SET expires_ms = EXCLUDED.expires_ms, body = EXCLUDED.body",
            params![token_hash.to_vec(), crate::domain::unix_ms(session.expires_at), store(session)?],
        )
    }

    fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>, StorageError> {
        let rows = self.0.read(
            "SELECT body FROM sessions WHERE token_hash = $1",
            params![token_hash.to_vec()],
        )?;
        first(rows, "session")
    }

    fn remove_expired_sessions(&self, now: OffsetDateTime) -> Result<usize, StorageError> {
        let rows = self.0.read(
            "DELETE FROM sessions WHERE expires_ms < $1 RETURNING 1",
            params![crate::domain::unix_ms(now)],
        )?;
        Ok(rows.len())
    }

    fn put_block(&self, openid: &OpenId, block: &Block) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO blocks (openid, body) VALUES ($1, $2) \
             ON CONFLICT (openid) DO UPDATE SET body = EXCLUDED.body",
            params![openid.to_string(), store(block)?],
        )
    }

    fn remove_block(&self, openid: &OpenId) -> Result<bool, StorageError> {
        let rows = self.0.read(
            "DELETE FROM blocks WHERE openid = $1 RETURNING 1",
            params![openid.to_string()],
        )?;
        Ok(!rows.is_empty())
    }

    fn all_blocks(&self) -> Result<Vec<(OpenId, Block)>, StorageError> {
        let rows = self
            .0
            .read("SELECT openid, body FROM blocks ORDER BY openid", params![])?;
        rows.iter()
            .map(|row| {
                let key: String = column(row, 0, "blocks")?;
                let openid = OpenId::parse(&key).map_err(|_| corrupt(&key))?;
                Ok((openid, body(row, &key)?))
            })
            .collect()
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}

/// The operators actor's table.
#[derive(Clone)]
pub struct PgOperators(pub(super) Conn);

impl OperatorRepo for PgOperators {
    fn put_operator(&self, operator: &OperatorRecord) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO operators (name, body) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body",
            params![operator.name.as_str().to_owned(), store(operator)?],
        )
    }

    fn all_operators(&self) -> Result<Vec<OperatorRecord>, StorageError> {
        let rows = self
            .0
            .read("SELECT name, body FROM operators ORDER BY name", params![])?;
        rows.iter()
            .map(|row| body(row, &column::<String>(row, 0, "operators")?))
            .collect()
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}

/// The dispatcher's tables.
#[derive(Clone)]
pub struct PgCouriers(pub(super) Conn);

impl CourierRepo for PgCouriers {
    fn put_courier(&self, profile: &CourierProfile) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO couriers (openid, body) VALUES ($1, $2) \
             ON CONFLICT (openid) DO UPDATE SET body = EXCLUDED.body",
            params![profile.openid.to_string(), encode_courier(profile)?],
        )
    }

    fn get_courier(&self, openid: &OpenId) -> Result<Option<CourierProfile>, StorageError> {
        let rows = self.0.read(
            "SELECT body FROM couriers WHERE openid = $1",
            params![openid.to_string()],
        )?;
        rows.first()
            .map(|row| courier_of(column(row, 0, openid.as_str())?, openid.as_str()))
            .transpose()
    }

    fn all_couriers(&self) -> Result<Vec<CourierProfile>, StorageError> {
        let rows = self.0.read(
            "SELECT openid, body FROM couriers ORDER BY openid",
            params![],
        )?;
        rows.iter()
            .map(|row| {
                let key: String = column(row, 0, "couriers")?;
                courier_of(column(row, 1, &key)?, &key)
            })
            .collect()
    }

    fn releases_on(&self, openid: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        count_on(
            &self.0,
            "SELECT n FROM courier_releases WHERE openid = $1 AND day = $2",
            openid,
            day,
        )
    }

    fn count_release(&self, openid: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        let n = self.releases_on(openid, day)? + 1;
        self.0.write(
            "INSERT INTO courier_releases (openid, day, n) VALUES ($1, $2, $3) \
             ON CONFLICT (openid, day) DO UPDATE SET n = EXCLUDED.n",
            params![openid.to_string(), day.to_string(), n as i32],
        )?;
        Ok(n)
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}

/// The token keeper's row.
#[derive(Clone)]
pub struct PgTokens(pub(super) Conn);

impl TokenRepo for PgTokens {
    fn put_access_token(&self, token: &StoredToken) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO meta (key, body) VALUES ('access_token', $1) \
             ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body",
            params![store(token)?],
        )
    }

    fn get_access_token(&self) -> Result<Option<StoredToken>, StorageError> {
        let rows = self.0.read(
            "SELECT body FROM meta WHERE key = 'access_token'",
            params![],
        )?;
        first(rows, "access_token")
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}

/// The share-code actor's table.
#[derive(Clone)]
pub struct PgShareCodes(pub(super) Conn);

impl ShareCodeRepo for PgShareCodes {
    fn get_share_code(&self, scene: &str, page: &str) -> Result<Option<String>, StorageError> {
        let rows = self.0.read(
            "SELECT url FROM share_codes WHERE scene = $1 AND page = $2",
            params![scene.to_owned(), page.to_owned()],
        )?;
        rows.first().map(|row| column(row, 0, scene)).transpose()
    }

    fn put_share_code(&self, scene: &str, page: &str, url: &str) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO share_codes (scene, page, url) VALUES ($1, $2, $3) \
             ON CONFLICT (scene, page) DO UPDATE SET url = EXCLUDED.url",
            params![scene.to_owned(), page.to_owned(), url.to_owned()],
        )
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}

/// Local objects (share images and photos), with their bytes.
#[derive(Clone)]
pub struct PgObjects(pub(super) Conn);

impl ObjectRepo for PgObjects {
    fn put_object(&self, object: &StoredObject) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO objects (public, key, content_type, bytes) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (public, key) DO UPDATE SET content_type = EXCLUDED.content_type, bytes = EXCLUDED.bytes",
            params![
                object.visibility == Visibility::Public,
                object.key.to_string(),
                object.content_type.clone(),
                object.bytes.clone()
            ],
        )
    }

    fn get_object(
        &self,
        visibility: Visibility,
        key: &ObjectKey,
    ) -> Result<Option<StoredObject>, StorageError> {
        let rows = self.0.read(
            "SELECT content_type, bytes FROM objects WHERE public = $1 AND key = $2",
            params![visibility == Visibility::Public, key.to_string()],
        )?;
        rows.first()
            .map(|row| {
                Ok(StoredObject {
                    key: key.clone(),
                    visibility,
                    content_type: column(row, 0, key.as_str())?,
                    bytes: column(row, 1, key.as_str())?,
                })
            })
            .transpose()
    }

    fn object_keys(&self) -> Result<Vec<(Visibility, ObjectKey)>, StorageError> {
        let rows = self.0.read(
            "SELECT public, key FROM objects ORDER BY public DESC, key COLLATE \"C\"",
            params![],
        )?;
        rows.iter()
            .map(|row| {
                let public: bool = column(row, 0, "objects")?;
                let key: String = column(row, 1, "objects")?;
                let key = ObjectKey::parse(&key).map_err(|_| corrupt(&key))?;
                let visibility = if public {
                    Visibility::Public
                } else {
                    Visibility::Private
                };
                Ok((visibility, key))
            })
            .collect()
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}

/// The payments actor's table. Records it wrote or read are remembered:
/// the payments actor is their one writer, so they stay true, and a
/// notify or a prepay costs no round trip to read what this node knows
/// (until a commit fails: then what it wrote may be lost, and all is
/// read again).
#[derive(Clone)]
pub struct PgPayments {
    conn: Conn,
    known: Arc<Mutex<HashMap<OrderId, Option<PaymentRecord>>>>,
}

/// Most records [`PgPayments`] remembers (then it starts again).
const KNOWN_PAYMENTS: usize = 100_000;

impl PgPayments {
    /// The payments table through `conn`.
    pub(super) fn new(conn: Conn) -> Self {
        Self {
            conn,
            known: Arc::default(),
        }
    }

    fn remember(&self, id: &OrderId, record: Option<PaymentRecord>) {
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= KNOWN_PAYMENTS {
                known.clear();
            }
            known.insert(id.clone(), record);
        }
    }

    fn known(&self, id: &OrderId) -> Option<Option<PaymentRecord>> {
        self.known.lock().ok()?.get(id).cloned()
    }
}

impl PaymentRepo for PgPayments {
    fn put_payment(&self, record: &PaymentRecord) -> Result<(), StorageError> {
        self.conn.write(
            "INSERT INTO payments (order_id, body) VALUES ($1, $2) \
             ON CONFLICT (order_id) DO UPDATE SET body = EXCLUDED.body",
            params![record.order_id.to_string(), store(record)?],
        )?;
        self.remember(&record.order_id, Some(record.clone()));
        Ok(())
    }

    fn get_payment(&self, id: &OrderId) -> Result<Option<PaymentRecord>, StorageError> {
        if let Some(known) = self.known(id) {
            return Ok(known);
        }
        let rows = self.conn.read(
            "SELECT body FROM payments WHERE order_id = $1",
            params![id.to_string()],
        )?;
        let record: Option<PaymentRecord> = first(rows, id.as_str())?;
        self.remember(id, record.clone());
        Ok(record)
    }

    fn commit(&self) -> Committing {
        let committing = self.conn.commit();
        let known = self.known.clone();
        Box::pin(async move {
            let committed = committing.await;
            if committed.is_err() {
                if let Ok(mut known) = known.lock() {
                    known.clear();
                }
            }
            committed
        })
    }
}

/// The uploads actor's tables.
#[derive(Clone)]
pub struct PgUploads(pub(super) Conn);

impl UploadRepo for PgUploads {
    fn put_upload(&self, upload: &Upload) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO uploads (id, body) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
            params![upload.id.as_str().to_owned(), store(upload)?],
        )
    }

    fn get_upload(&self, id: &UploadId) -> Result<Option<Upload>, StorageError> {
        let rows = self.0.read(
            "SELECT body FROM uploads WHERE id = $1",
            params![id.as_str().to_owned()],
        )?;
        first(rows, id.as_str())
    }

    fn uploads_on(&self, owner: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        count_on(
            &self.0,
            "SELECT n FROM upload_days WHERE openid = $1 AND day = $2",
            owner,
            day,
        )
    }

    fn count_upload(&self, owner: &OpenId, day: ChinaDay) -> Result<u32, StorageError> {
        let n = self.uploads_on(owner, day)? + 1;
        self.0.write(
            "INSERT INTO upload_days (openid, day, n) VALUES ($1, $2, $3) \
             ON CONFLICT (openid, day) DO UPDATE SET n = EXCLUDED.n",
            params![owner.to_string(), day.to_string(), n as i32],
        )?;
        Ok(n)
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}

/// The form-id pool's tables.
#[derive(Clone)]
pub struct PgFormIds {
    pub(super) conn: Conn,
    pub(super) ids: crate::domain::Sequence,
}

impl FormIdRepo for PgFormIds {
    fn pool_id(
        &self,
        openid: &OpenId,
        expires_at: i64,
        entry: &PooledId,
        keep: usize,
    ) -> Result<(), StorageError> {
        let id = self.ids.next(super::now_ms());
        self.conn.write(
            "INSERT INTO form_ids (openid, expires_at, id, body) VALUES ($1, $2, $3, $4)",
            params![
                openid.to_string(),
                expires_at.max(0),
                id as i64,
                store(entry)?
            ],
        )?;
        // A user keeps the `keep` latest-expiring ids.
        self.conn.write(
            "DELETE FROM form_ids WHERE openid = $1 AND (expires_at, id) NOT IN \
             (SELECT expires_at, id FROM form_ids WHERE openid = $1 \
              ORDER BY expires_at DESC, id DESC LIMIT $2)",
            params![openid.to_string(), super::limit(keep)],
        )
    }

    fn prune_expired_ids(&self, now: i64) -> Result<usize, StorageError> {
        let rows = self.conn.read(
            "DELETE FROM form_ids WHERE expires_at <= $1 RETURNING 1",
            params![now],
        )?;
        Ok(rows.len())
    }

    fn pooled_count(&self, openid: &OpenId) -> usize {
        count(
            &self.conn,
            "SELECT count(*) FROM form_ids WHERE openid = $1",
            params![openid.to_string()],
        )
    }

    fn take_pooled_id(&self, openid: &OpenId, now: i64) -> Result<Option<String>, StorageError> {
        self.conn.write(
            "DELETE FROM form_ids WHERE openid = $1 AND expires_at <= $2",
            params![openid.to_string(), now],
        )?;
        let rows = self.conn.read(
            "SELECT expires_at, id, body FROM form_ids WHERE openid = $1 \
             ORDER BY expires_at, id LIMIT 1",
            params![openid.to_string()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (expires_at, id): (i64, i64) = (column(row, 0, "formid")?, column(row, 1, "formid")?);
        let mut entry: PooledId = body(row, "formid")?;
        entry.uses_left = entry.uses_left.saturating_sub(1);
        if entry.uses_left == 0 {
            self.conn.write(
                "DELETE FROM form_ids WHERE openid = $1 AND expires_at = $2 AND id = $3",
                params![openid.to_string(), expires_at, id],
            )?;
        } else {
            self.conn.write(
                "UPDATE form_ids SET body = $4 WHERE openid = $1 AND expires_at = $2 AND id = $3",
                params![openid.to_string(), expires_at, id, store(&entry)?],
            )?;
        }
        Ok(Some(entry.value))
    }

    fn add_grants(&self, openid: &OpenId, template: &str, n: u32) -> Result<(), StorageError> {
        if n == 0 {
            return Ok(());
        }
        self.conn.write(
            "INSERT INTO grants (openid, template, left_n) VALUES ($1, $2, $3) \
             ON CONFLICT (openid, template) DO UPDATE \
             SET left_n = least(grants.left_n::bigint + EXCLUDED.left_n, 2147483647)::integer",
            params![
                openid.to_string(),
                template.to_owned(),
                i32::try_from(n).unwrap_or(i32::MAX)
            ],
        )
    }

    fn take_grant(&self, openid: &OpenId, template: &str) -> Result<bool, StorageError> {
        let rows = self.conn.read(
            "SELECT left_n FROM grants WHERE openid = $1 AND template = $2",
            params![openid.to_string(), template.to_owned()],
        )?;
        let left: i32 = match rows.first() {
            Some(row) => column(row, 0, "grants")?,
            None => return Ok(false),
        };
        let sql = if left <= 1 {
            "DELETE FROM grants WHERE openid = $1 AND template = $2"
        } else {
            "UPDATE grants SET left_n = left_n - 1 WHERE openid = $1 AND template = $2"
        };
        self.conn
            .write(sql, params![openid.to_string(), template.to_owned()])?;
        Ok(true)
    }

    fn commit(&self) -> Committing {
        self.conn.commit()
    }
}

/// The notifier's table.
#[derive(Clone)]
pub struct PgOutbox(pub(super) Conn);

impl OutboxRepo for PgOutbox {
    fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        let rows = self.0.read(
            "SELECT body FROM outbox ORDER BY id LIMIT $1",
            params![super::limit(limit)],
        )?;
        rows.iter().map(|row| body(row, "outbox")).collect()
    }

    fn outbox_len(&self) -> usize {
        count(&self.0, "SELECT count(*) FROM outbox", params![])
    }

    fn put_outbox(&self, entry: &OutboxEntry) -> Result<(), StorageError> {
        self.0.write(
            "INSERT INTO outbox (id, body) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
            params![entry.id as i64, store(entry)?],
        )
    }

    fn remove_outbox(&self, id: u64) -> Result<(), StorageError> {
        self.0
            .write("DELETE FROM outbox WHERE id = $1", params![id as i64])
    }

    fn commit(&self) -> Committing {
        self.0.commit()
    }
}
