//! Durable state in sled: the only module that names `sled`.
//!
//! Trees (one per relation, keys that sort):
//! - `orders`: order id → versioned order record
//! - `orders_by_customer`: openid `\0` created_at µs (u64 BE) order id → ()
//! - `orders_active`: order id → () for every non-terminal order, so a shard
//!   reloads only what is alive, never the whole history
//! - `sessions`: sha256(token) → versioned session record
//!
//! Writes land in sled's memory at once; [`Store::commit`] makes them
//! durable. Concurrent committers share one flush (group commit): a flusher
//! thread takes every waiter queued while the previous flush ran, flushes
//! once, and wakes them all.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::domain::{OpenId, Order, OrderId, Session, Status};

/// Version byte in front of every stored record.
const RECORD_V1: u8 = 1;
/// sled's page cache; big enough to hold the working set of active orders.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// How many index entries one list call may skip over when filtering by status.
const LIST_SCAN_LIMIT: usize = 10_000;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// sled reported an I/O or corruption error.
    #[error("storage I/O failed")]
    Sled(#[from] sled::Error),
    /// A flush failed; every writer of that batch gets this.
    #[error("storage flush failed: {0}")]
    Flush(String),
    /// A stored record does not decode.
    #[error("stored record {key} is corrupt")]
    Corrupt {
        /// Which key.
        key: String,
    },
    /// The store is shutting down.
    #[error("storage is closed")]
    Closed,
}

type Waiter = oneshot::Sender<Result<(), String>>;

struct Inner {
    db: sled::Db,
    orders: sled::Tree,
    by_customer: sled::Tree,
    active: sled::Tree,
    sessions: sled::Tree,
    committer: mpsc::Sender<Waiter>,
}

/// The handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Where the next page of a customer's order list starts (opaque to clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor(Vec<u8>);

impl ListCursor {
    /// Parses a cursor a client sent back.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        (bytes.len() > 8 && bytes.len() <= 8 + 32).then_some(Self(bytes))
    }

    /// The text form handed to clients.
    pub fn encode(&self) -> String {
        hex::encode(&self.0)
    }
}

impl Store {
    /// Opens (or creates) the database at `path` and starts the flusher.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flusher_db = db.clone();
        thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || run_flusher(flusher_db, rx))
            .map_err(|e| StorageError::Flush(e.to_string()))?;
        let inner = Inner {
            orders: db.open_tree("orders")?,
            by_customer: db.open_tree("orders_by_customer")?,
            active: db.open_tree("orders_active")?,
            sessions: db.open_tree("sessions")?,
            committer: tx,
            db,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .committer
            .send(tx)
            .map_err(|_| StorageError::Closed)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StorageError::Flush(msg)),
            Err(_) => Err(StorageError::Closed),
        }
    }

    /// Flushes synchronously (shutdown); call off the async threads.
    pub fn flush_blocking(&self) -> Result<(), StorageError> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// True when the database answers a read.
    pub fn is_healthy(&self) -> bool {
        self.inner.orders.first().is_ok()
    }

    /// Writes an order, its customer index entry (when new) and its active
    /// mark in one transaction. Not durable until [`Store::commit`].
    pub fn put_order(&self, order: &Order, is_new: bool) -> Result<(), StorageError> {
        let key = order.id.as_str().as_bytes();
        let record = encode(order)?;
        let index_key = is_new.then(|| customer_index_key(order));
        let terminal = order.status().is_terminal();
        let inner = &self.inner;
        (&inner.orders, &inner.by_customer, &inner.active)
            .transaction(|(orders, by_customer, active)| {
                orders.insert(key, record.as_slice())?;
                if let Some(ik) = &index_key {
                    by_customer.insert(ik.as_slice(), &[])?;
                }
                if terminal {
                    active.remove(key)?;
                } else {
                    active.insert(key, &[])?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => StorageError::Sled(e),
                TransactionError::Abort(()) => StorageError::Flush("transaction aborted".into()),
            })
    }

    /// One order by id.
    pub fn get_order(&self, id: &OrderId) -> Result<Option<Order>, StorageError> {
        match self.inner.orders.get(id.as_str().as_bytes())? {
            Some(bytes) => decode(&bytes, id.as_str()).map(Some),
            None => Ok(None),
        }
    }

    /// Every non-terminal order whose id `owns` accepts (a shard's share).
    pub fn active_orders(
        &self,
        owns: impl Fn(&OrderId) -> bool,
    ) -> Result<Vec<Order>, StorageError> {
        let mut out = Vec::new();
        for item in self.inner.active.iter().keys() {
            let key = item?;
            let Some(id) = std::str::from_utf8(&key)
                .ok()
                .and_then(|s| OrderId::parse(s).ok())
            else {
                continue;
            };
            if !owns(&id) {
                continue;
            }
            if let Some(order) = self.get_order(&id)? {
                out.push(order);
            }
        }
        Ok(out)
    }

    /// A page of a customer's orders, newest first, optionally one status only.
    pub fn list_customer_orders(
        &self,
        customer: &OpenId,
        status: Option<Status>,
        limit: usize,
        cursor: Option<&ListCursor>,
    ) -> Result<(Vec<Order>, Option<ListCursor>), StorageError> {
        let mut prefix = customer.as_str().as_bytes().to_vec();
        prefix.push(0);
        let mut end = customer.as_str().as_bytes().to_vec();
        end.push(1);
        if let Some(c) = cursor {
            end = prefix.clone();
            end.extend_from_slice(&c.0);
        }
        let mut orders = Vec::with_capacity(limit.min(100));
        let mut last_key: Option<Vec<u8>> = None;
        let mut more = false;
        for (scanned, item) in self
            .inner
            .by_customer
            .range(prefix.clone()..end)
            .keys()
            .rev()
            .enumerate()
        {
            let key = item?;
            if orders.len() == limit || scanned >= LIST_SCAN_LIMIT {
                more = true;
                break;
            }
            last_key = Some(key.to_vec());
            let id_bytes = &key[prefix.len() + 8..];
            let Some(id) = std::str::from_utf8(id_bytes)
                .ok()
                .and_then(|s| OrderId::parse(s).ok())
            else {
                continue;
            };
            let Some(order) = self.get_order(&id)? else {
                continue;
            };
            if status.is_none_or(|s| s == order.status()) {
                orders.push(order);
            }
        }
        let next = match (more, last_key) {
            (true, Some(k)) => Some(ListCursor(k[prefix.len()..].to_vec())),
            _ => None,
        };
        Ok((orders, next))
    }

    /// Stores a login session under the hash of its token.
    pub fn put_session(
        &self,
        token_hash: &[u8; 32],
        session: &Session,
    ) -> Result<(), StorageError> {
        self.inner.sessions.insert(token_hash, encode(session)?)?;
        Ok(())
    }

    /// A session by token hash.
    pub fn get_session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>, StorageError> {
        match self.inner.sessions.get(token_hash)? {
            Some(bytes) => decode(&bytes, "session").map(Some),
            None => Ok(None),
        }
    }

    /// Deletes sessions that expired before `now`; returns how many.
    pub fn remove_expired_sessions(&self, now: OffsetDateTime) -> Result<usize, StorageError> {
        let mut removed = 0;
        for item in self.inner.sessions.iter() {
            let (key, value) = item?;
            let expired = decode::<Session>(&value, "session")
                .map(|s| s.expires_at < now)
                .unwrap_or(true);
            if expired {
                self.inner.sessions.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn customer_index_key(order: &Order) -> Vec<u8> {
    let micros = (order.created_at.unix_timestamp_nanos() / 1_000).max(0) as u64;
    let mut key = order.customer.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&micros.to_be_bytes());
    key.extend_from_slice(order.id.as_str().as_bytes());
    key
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(512);
    out.push(RECORD_V1);
    serde_json::to_writer(&mut out, value).map_err(|_| StorageError::Corrupt {
        key: "(encode)".into(),
    })?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], key: &str) -> Result<T, StorageError> {
    let corrupt = || StorageError::Corrupt {
        key: key.to_owned(),
    };
    match bytes.split_first() {
        Some((&RECORD_V1, body)) => serde_json::from_slice(body).map_err(|_| corrupt()),
        _ => Err(corrupt()),
    }
}

fn run_flusher(db: sled::Db, rx: mpsc::Receiver<Waiter>) {
    // Ends when the last Store handle (and so the Sender) is dropped.
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let started = std::time::Instant::now();
        let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
        metrics::histogram!("lastmile_storage_flush_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("lastmile_storage_commit_batch_size").record(batch.len() as f64);
        if let Err(e) = &result {
            tracing::error!(error = %e, "group commit flush failed");
        }
        for waiter in batch {
            let _ = waiter.send(result.clone());
        }
    }
}
