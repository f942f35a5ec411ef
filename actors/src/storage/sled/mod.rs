//! The sled engine: the embedded default store, and the only module that
//! names `sled`.
//!
//! Trees (one per relation, keys that sort):
//! - `orders_active`: order id → versioned order record, for every order
//!   that is not terminal; a shard reloads only this tree
//! - `orders_archive`: order id → record, for completed / cancelled /
//!   refunded orders (history; never loaded whole)
//! - `idempotency`: openid `\0` Idempotency-Key → order id
//! - `payments`: order id → versioned payment session (prepay, transaction, refund)
//! - `sessions`: sha256(token) → versioned session record
//! - `blocked`: openid → an operator's block on that user (reason, since)
//! - `operators`: name → operator (role, campuses, sha256 of the token)
//! - `formids`: openid `\0` expires-at (unix s, u64 BE) id (u64 BE) → pooled
//!   form_id or prepay_id with its uses left (earliest-expiring first)
//! - `grants`: openid `\0` template id → subscribe-message grants left (u32 BE)
//! - `meta`: `access_token` → the app's current access token
//! - `share_codes`: scene `\0` page → the uploaded wxacode's URL
//! - `couriers`: openid → courier profile
//! - `courier_releases`: openid `\0` China day → orders the courier gave back that day (u32 BE)
//! - `uploads`: upload id → the photo's record (owner, type, the order it proves)
//! - `outbox`: entry id (u64 BE, increasing) → a message to send, written in
//!   the same transaction as the order change it announces
//!
//! Order ids start with a customer prefix and sort by time (see
//! [`OrderId::generate`]), so a customer's orders are one key range in each
//! orders tree and creating an order costs a single sled write.
//!
//! Writes land in sled's memory at once; [`SledStore::commit`] makes them
//! durable. Concurrent committers share one flush (group commit): a flusher
//! thread takes every waiter queued while the previous flush ran, flushes
//! once, and wakes them all.

mod copy;
mod couriers;
mod formids;
mod ledger;
mod objects;
mod operators;
mod orders;
mod outbox;
mod payments;
mod sessions;
mod sharecodes;
mod tokens;
mod uploads;

pub use copy::SledDump;
pub use couriers::SledCouriers;
pub use formids::SledFormIds;
pub use ledger::SledLedger;
pub use objects::SledObjects;
pub use operators::SledOperators;
pub use orders::SledOrders;
pub use outbox::SledOutbox;
pub use payments::SledPayments;
pub use sessions::SledSessions;
pub use sharecodes::SledShareCodes;
pub use tokens::SledTokens;
pub use uploads::SledUploads;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use ::sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::records::{courier_of, decode_order, encode_courier, encode_order, load, store};

use crate::domain::{
    Block, CourierProfile, IdempotencyKey, OpenId, OperatorRecord, Order, OrderId, OutboxEntry,
    PooledId, Sequence, Session, Status, StoredToken, Upload, UploadId,
};

/// sled's page cache; big enough to hold the working set of active orders.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;
/// How many index entries one list call may skip over when filtering by status.
const LIST_SCAN_LIMIT: usize = 10_000;
/// How often the write probe proves that storage takes a durable write.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Storage counts as writable while the last good probe is this recent.
const PROBE_FRESH: Duration = Duration::from_secs(10);
/// `meta` key of the highest id made before the last flush (u64 BE).
const IDS_MARK: &str = "ids_mark";

pub use super::StorageError;

impl From<::sled::Error> for StorageError {
    fn from(e: ::sled::Error) -> Self {
        StorageError::Engine(Box::new(e))
    }
}

type Waiter = oneshot::Sender<Result<(), String>>;

/// Creates `path` if needed and closes it to other users: the records hold
/// phone numbers, pickup codes and the live access_token, and sled creates
/// its files with the process's umask (0644 under a default one).
fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

struct Inner {
    db: ::sled::Db,
    /// The store's directory (photos are kept as files beside the trees).
    path: std::path::PathBuf,
    active: ::sled::Tree,
    archive: ::sled::Tree,
    idempotency: ::sled::Tree,
    payments: ::sled::Tree,
    sessions: ::sled::Tree,
    blocked: ::sled::Tree,
    operators: ::sled::Tree,
    formids: ::sled::Tree,
    grants: ::sled::Tree,
    meta: ::sled::Tree,
    share_codes: ::sled::Tree,
    couriers: ::sled::Tree,
    courier_releases: ::sled::Tree,
    uploads: ::sled::Tree,
    upload_days: ::sled::Tree,
    outbox: ::sled::Tree,
    ledger_inbox: ::sled::Tree,
    ledger_postings: ::sled::Tree,
    ledger_balances: ::sled::Tree,
    ledger_entries: ::sled::Tree,
    withdrawals: ::sled::Tree,
    withdrawals_by_courier: ::sled::Tree,
    withdrawals_by_status: ::sled::Tree,
    withdrawal_keys: ::sled::Tree,
    ledger_days: ::sled::Tree,
    /// The commission percent in force when each order was paid.
    ledger_rates: ::sled::Tree,
    reconciliations: ::sled::Tree,
    /// The group-commit thread's queue (taken on drop, which ends it).
    committer: Option<mpsc::Sender<Waiter>>,
    /// The group-commit thread, joined on drop: it holds the database, so
    /// the directory is free again once the last handle is gone.
    flusher: Option<thread::JoinHandle<()>>,
    /// Flushes still to fail on purpose (fault injection for tests).
    failing_flushes: Arc<AtomicU32>,
    /// The last flush failed: nothing written since is known durable.
    flush_failed: Arc<AtomicBool>,
    /// When the write probe last got a durable write through (unix ms).
    probe_ok_ms: AtomicI64,
    /// The increasing ids of the inbox, the outbox and the statements.
    ids: Sequence,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.committer.take();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// The sled database; cheap to clone.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

impl SledStore {
    /// Opens (or creates) the database at `path` and starts the flusher,
    /// which starts at most one flush per `commit_window`.
    pub fn open(path: &Path, commit_window: Duration) -> Result<Self, StorageError> {
        private_dir(path).map_err(|source| StorageError::Dir {
            path: path.display().to_string(),
            source,
        })?;
        let db = ::sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .mode(::sled::Mode::HighThroughput)
            .open()?;
        let meta = db.open_tree("meta")?;
        let outbox = db.open_tree("outbox")?;
        let ledger_inbox = db.open_tree("ledger_inbox")?;
        let ids = Sequence::after(ids_mark(&meta, &[&outbox, &ledger_inbox])?);
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flusher = Flusher {
            db: db.clone(),
            meta: meta.clone(),
            ids: ids.clone(),
            window: commit_window,
            failing: Arc::new(AtomicU32::new(0)),
            failed: Arc::new(AtomicBool::new(false)),
        };
        let (failing_flushes, flush_failed) = (flusher.failing.clone(), flusher.failed.clone());
        let flusher = thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || flusher.run(rx))
            .map_err(|e| StorageError::Commit(e.to_string()))?;
        let inner = Inner {
            active: db.open_tree("orders_active")?,
            archive: db.open_tree("orders_archive")?,
            idempotency: db.open_tree("idempotency")?,
            payments: db.open_tree("payments")?,
            sessions: db.open_tree("sessions")?,
            blocked: db.open_tree("blocked")?,
            operators: db.open_tree("operators")?,
            formids: db.open_tree("formids")?,
            grants: db.open_tree("grants")?,
            meta,
            share_codes: db.open_tree("share_codes")?,
            couriers: db.open_tree("couriers")?,
            courier_releases: db.open_tree("courier_releases")?,
            uploads: db.open_tree("uploads")?,
            upload_days: db.open_tree("upload_days")?,
            outbox,
            ledger_inbox,
            ledger_postings: db.open_tree("ledger_postings")?,
            ledger_balances: db.open_tree("ledger_balances")?,
            ledger_entries: db.open_tree("ledger_entries")?,
            withdrawals: db.open_tree("withdrawals")?,
            withdrawals_by_courier: db.open_tree("withdrawals_by_courier")?,
            withdrawals_by_status: db.open_tree("withdrawals_by_status")?,
            withdrawal_keys: db.open_tree("withdrawal_keys")?,
            ledger_days: db.open_tree("ledger_days")?,
            ledger_rates: db.open_tree("ledger_rates")?,
            reconciliations: db.open_tree("reconciliations")?,
            committer: Some(tx),
            flusher: Some(flusher),
            failing_flushes,
            flush_failed,
            probe_ok_ms: AtomicI64::new(unix_ms()),
            ids,
            db,
            path: path.to_path_buf(),
        };
        let store = Self {
            inner: Arc::new(inner),
        };
        store.start_probe()?;
        Ok(store)
    }

    /// Proves every [`PROBE_EVERY`] that a write gets through to disk; the
    /// thread ends with the store.
    fn start_probe(&self) -> Result<(), StorageError> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        thread::Builder::new()
            .name("storage-probe".into())
            .spawn(move || loop {
                thread::sleep(PROBE_EVERY);
                let Some(inner) = weak.upgrade() else { return };
                let store = SledStore { inner };
                if store.probe().is_ok() {
                    store.inner.probe_ok_ms.store(unix_ms(), Ordering::Relaxed);
                }
            })
            .map_err(|e| StorageError::Commit(e.to_string()))?;
        Ok(())
    }

    /// One durable write of a small record, through the group commit.
    fn probe(&self) -> Result<(), StorageError> {
        self.inner.meta.insert("probe", &unix_ms().to_be_bytes())?;
        let (tx, rx) = oneshot::channel();
        self.inner
            .committer
            .as_ref()
            .ok_or(StorageError::Closed)?
            .send(tx)
            .map_err(|_| StorageError::Closed)?;
        match rx.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StorageError::Commit(msg)),
            Err(_) => Err(StorageError::Closed),
        }
    }

    /// True when the last flush worked and the write probe got a durable
    /// write through recently (what `/readyz` reports).
    pub fn is_writable(&self) -> bool {
        let fresh = unix_ms() - self.inner.probe_ok_ms.load(Ordering::Relaxed)
            < PROBE_FRESH.as_millis() as i64;
        fresh && !self.inner.flush_failed.load(Ordering::Relaxed)
    }

    /// Makes the next `n` flushes fail (fault injection for tests).
    #[doc(hidden)]
    pub fn inject_flush_failures(&self, n: u32) {
        self.inner.failing_flushes.store(n, Ordering::SeqCst);
    }

    /// Sets an account's balance with no posting behind it (fault
    /// injection for tests).
    #[doc(hidden)]
    pub fn inject_unposted_balance(
        &self,
        account: &crate::domain::Account,
        fen: i64,
    ) -> Result<(), StorageError> {
        self.inner
            .ledger_balances
            .insert(account.key().as_bytes(), &fen.to_be_bytes())?;
        Ok(())
    }

    /// Waits until every write made before this call is on disk.
    pub async fn commit(&self) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .committer
            .as_ref()
            .ok_or(StorageError::Closed)?
            .send(tx)
            .map_err(|_| StorageError::Closed)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StorageError::Commit(msg)),
            Err(_) => Err(StorageError::Closed),
        }
    }

    /// [`Self::commit`] as a repository answers it (owned, boxed).
    pub(super) fn committing(&self) -> crate::storage::Committing {
        let store = self.clone();
        Box::pin(async move { store.commit().await })
    }

    /// Flushes synchronously (shutdown); call off the async threads.
    pub fn flush_blocking(&self) -> Result<(), StorageError> {
        self.inner.db.flush()?;
        Ok(())
    }

    /// True when the database answers a read.
    pub fn is_healthy(&self) -> bool {
        self.inner.active.first().is_ok()
    }

    /// The orders shards' trees.
    pub fn order_repo(&self) -> SledOrders {
        SledOrders(self.clone())
    }

    /// The ledger's trees.
    pub fn ledger_repo(&self) -> SledLedger {
        SledLedger(self.clone())
    }

    /// The notifier's outbox.
    pub fn outbox_repo(&self) -> SledOutbox {
        SledOutbox(self.clone())
    }

    /// The payments actor's tree.
    pub fn payment_repo(&self) -> SledPayments {
        SledPayments(self.clone())
    }

    /// The form-id pool's trees.
    pub fn formid_repo(&self) -> SledFormIds {
        SledFormIds(self.clone())
    }

    /// The token refresher's record.
    pub fn token_repo(&self) -> SledTokens {
        SledTokens(self.clone())
    }

    /// The share-code actor's tree.
    pub fn share_code_repo(&self) -> SledShareCodes {
        SledShareCodes(self.clone())
    }

    /// The dispatcher's tree.
    pub fn courier_repo(&self) -> SledCouriers {
        SledCouriers(self.clone())
    }

    /// The sessions actor's tree.
    pub fn session_repo(&self) -> SledSessions {
        SledSessions(self.clone())
    }

    /// The uploads actor's tree.
    pub fn upload_repo(&self) -> SledUploads {
        SledUploads(self.clone())
    }

    /// The operators actor's tree.
    pub fn operator_repo(&self) -> SledOperators {
        SledOperators(self.clone())
    }

    /// Local objects: public ones in `public_dir` (`objects.local_dir`),
    /// photos in the store's own `uploads/`.
    pub fn object_repo(&self, public_dir: &Path) -> SledObjects {
        SledObjects::new(public_dir.to_path_buf(), self.inner.path.join("uploads"))
    }
}

fn parse_order_id(bytes: &[u8]) -> Result<OrderId, StorageError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| OrderId::parse(t).ok())
        .ok_or_else(|| StorageError::Corrupt {
            key: "idempotency".into(),
        })
}

fn user_prefix(openid: &OpenId) -> Vec<u8> {
    let mut out = openid.as_str().as_bytes().to_vec();
    out.push(0);
    out
}

fn grant_key(openid: &OpenId, template: &str) -> Vec<u8> {
    let mut out = user_prefix(openid);
    out.extend_from_slice(template.as_bytes());
    out
}

fn idempotency_key(customer: &OpenId, key: &IdempotencyKey) -> Vec<u8> {
    let mut out = customer.as_str().as_bytes().to_vec();
    out.push(0);
    out.extend_from_slice(key.as_str().as_bytes());
    out
}

/// The first key after every key that starts with `prefix` (prefixes here
/// are ASCII, so the last byte never overflows).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

fn tx_error(e: TransactionError<()>) -> StorageError {
    match e {
        TransactionError::Storage(e) => e.into(),
        TransactionError::Abort(()) => StorageError::Commit("transaction aborted".into()),
    }
}

/// The highest id the store holds: the mark the last flush wrote, or a
/// waiting inbox or outbox entry made after it.
fn ids_mark(meta: &::sled::Tree, queues: &[&::sled::Tree]) -> Result<u64, StorageError> {
    let be = |bytes: &[u8]| <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes);
    let mut mark = meta.get(IDS_MARK)?.map_or(0, |v| be(&v));
    for queue in queues {
        if let Some((key, _)) = queue.last()? {
            mark = mark.max(be(&key));
        }
    }
    Ok(mark)
}

fn unix_ms() -> i64 {
    crate::domain::unix_ms(OffsetDateTime::now_utc())
}

/// The group-commit thread's state.
struct Flusher {
    db: ::sled::Db,
    /// Where the mark of the ids made so far goes with every flush.
    meta: ::sled::Tree,
    ids: Sequence,
    window: Duration,
    failing: Arc<AtomicU32>,
    failed: Arc<AtomicBool>,
}

impl Flusher {
    fn flush(&self) -> Result<(), String> {
        if self
            .failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("injected flush failure".into());
        }
        // Every id made before this flush is below the mark it makes durable.
        self.meta
            .insert(IDS_MARK, &self.ids.last().to_be_bytes())
            .map_err(|e| e.to_string())?;
        self.db.flush().map(|_| ()).map_err(|e| e.to_string())
    }

    fn run(self, rx: mpsc::Receiver<Waiter>) {
        let mut last_flush = Instant::now() - self.window;
        // Ends when the last SledStore handle (and so the Sender) is dropped.
        while let Ok(first) = rx.recv() {
            // A flush costs the same for one writer or a hundred: wait out the
            // rest of the window so that a busy second shares fewer, fuller flushes.
            let since = last_flush.elapsed();
            if since < self.window {
                thread::sleep(self.window - since);
            }
            last_flush = Instant::now();
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            let started = Instant::now();
            let result = self.flush();
            metrics::histogram!("lastmile_storage_flush_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("lastmile_storage_commit_batch_size").record(batch.len() as f64);
            self.failed.store(result.is_err(), Ordering::SeqCst);
            if let Err(e) = &result {
                tracing::error!(error = %e, "group commit flush failed");
                metrics::counter!("lastmile_storage_flush_failures_total").increment(1);
            }
            for waiter in batch {
                let _ = waiter.send(result.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now_utc;
    use crate::domain::PayParams;
    use crate::domain::PaymentRecord;
    use crate::storage::records::{
        self, encode_tagged, COURIER_V2, COURIER_V4, ORDER_V2, ORDER_V3, ORDER_V4, ORDER_V6,
        RECORD_V1,
    };
    use crate::storage::{CourierRepo, FormIdRepo, LedgerRepo, OrderRepo};

    fn temp_store() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().expect("tmp");
        let store =
            SledStore::open(&dir.path().join("db"), Duration::from_millis(1)).expect("open");
        (dir, store)
    }

    fn order_at(customer: &OpenId, at: OffsetDateTime) -> Order {
        use crate::domain::{Fen, Location, NewOrder, OrderKind, PlaceId};
        let place = PlaceId::unchecked("gate");
        let new = NewOrder {
            kind: OrderKind::Express,
            pickup: Location {
                place_id: place.clone(),
                detail: String::new(),
            },
            dropoff: Location {
                place_id: place,
                detail: String::new(),
            },
            pickup_code: String::new(),
            fee_fen: Fen::try_from(300).expect("fee"),
            tip_fen: crate::domain::Tip::default(),
            note: String::new(),
            ready_at: None,
            contact_phone: None,
            flagged: false,
            campus: crate::domain::CampusId::parse("east").expect("campus id"),
        };
        let mut order = Order::new(OrderId::generate(customer, at), customer.clone(), new, at);
        // As written before campuses: the records these tests pin down.
        order.extras.campus = None;
        order
    }

    #[test]
    fn an_order_keeps_its_campus_and_one_written_before_campuses_has_none() {
        let customer = OpenId::parse("oCAMPUS").expect("openid");
        let at = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time");
        let mut order = order_at(&customer, at);
        let before = encode_order(&order).expect("encodes");
        assert_eq!(before[0], ORDER_V2);
        assert_eq!(
            decode_order(&before, "k").expect("reads").extras.campus,
            None
        );
        order.extras.campus = Some(crate::domain::CampusId::parse("east").expect("id"));
        order.tip_fen = crate::domain::Tip::try_from(50).expect("tip");
        let bytes = encode_order(&order).expect("encodes");
        assert_eq!(bytes[0], ORDER_V6);
        assert_eq!(decode_order(&bytes, "k").expect("reads"), order);
    }

    #[test]
    fn idempotency_keys_are_forgotten_after_their_time() {
        let (_dir, store) = temp_store();
        let customer = OpenId::parse("oIDEM").expect("openid");
        let key = IdempotencyKey::parse("retry-1").expect("key");
        let now = now_utc();
        let old = order_at(&customer, now - Duration::from_secs(25 * 3600));
        store
            .order_repo()
            .insert_new_order(&old, Some(&key))
            .expect("insert");
        let day_ago =
            ((now - Duration::from_secs(24 * 3600)).unix_timestamp_nanos() / 1_000_000) as u64;
        let hour_ago =
            ((now - Duration::from_secs(26 * 3600)).unix_timestamp_nanos() / 1_000_000) as u64;

        assert_eq!(
            store
                .order_repo()
                .idempotent_order(&customer, &key, hour_ago)
                .expect("read"),
            Some(old.id.clone()),
            "still within its time"
        );
        assert_eq!(
            store
                .order_repo()
                .idempotent_order(&customer, &key, day_ago)
                .expect("read"),
            None
        );
        assert_eq!(
            store
                .order_repo()
                .idempotent_order(&customer, &key, hour_ago)
                .expect("read"),
            None,
            "and gone for good"
        );

        let ours = crate::domain::Shard::of_customer(&customer, 2);
        let theirs = crate::domain::Shard {
            index: 1 - ours.index,
            count: 2,
        };
        let other_key = IdempotencyKey::parse("retry-2").expect("key");
        let older = order_at(&customer, now - Duration::from_secs(30 * 3600));
        let fresh = order_at(&customer, now);
        store
            .order_repo()
            .insert_new_order(&older, Some(&other_key))
            .expect("insert");
        store
            .order_repo()
            .insert_new_order(&fresh, Some(&key))
            .expect("insert");
        assert_eq!(
            store
                .order_repo()
                .prune_idempotency(day_ago, theirs)
                .expect("sweep"),
            0,
            "not ours"
        );
        assert_eq!(
            store
                .order_repo()
                .prune_idempotency(day_ago, ours)
                .expect("sweep"),
            1
        );
        assert_eq!(
            store
                .order_repo()
                .idempotent_order(&customer, &key, day_ago)
                .expect("read"),
            Some(fresh.id)
        );
    }

    #[test]
    fn expired_pooled_ids_are_swept_and_a_user_keeps_at_most_the_cap() {
        let (_dir, store) = temp_store();
        let user = OpenId::parse("oPOOL").expect("openid");
        let entry = |v: &str| PooledId {
            value: v.into(),
            uses_left: 1,
        };
        store
            .formid_repo()
            .pool_id(&user, 100, &entry("expired"), 10)
            .expect("pool");
        for i in 0..12 {
            store
                .formid_repo()
                .pool_id(&user, 1_000 + i, &entry(&format!("f{i}")), 10)
                .expect("pool");
        }
        assert_eq!(
            store.formid_repo().pooled_count(&user),
            10,
            "capped, the earliest-expiring dropped"
        );
        assert_eq!(
            store.formid_repo().prune_expired_ids(1_005).expect("sweep"),
            4
        );
        assert_eq!(store.formid_repo().pooled_count(&user), 6);
        assert_eq!(
            store
                .formid_repo()
                .take_pooled_id(&user, 1_005)
                .expect("take")
                .as_deref(),
            Some("f6")
        );
    }

    #[test]
    fn filtered_paging_never_ends_early() {
        let (_dir, store) = temp_store();
        let customer = OpenId::parse("oPAGER").expect("openid");
        let now = now_utc();
        let mut cancelled = Vec::new();
        for i in 0..40u64 {
            let mut order = order_at(&customer, now - Duration::from_secs(1000 - i));
            // A few matches far apart, behind long runs of others.
            if i % 13 == 0 {
                order
                    .apply(
                        crate::domain::Event::Cancel,
                        crate::domain::ChangedBy::Customer,
                        now,
                    )
                    .expect("cancel");
                store
                    .order_repo()
                    .insert_new_order(&order, None)
                    .expect("insert");
                store
                    .order_repo()
                    .update_order(&order, false)
                    .expect("archive");
                cancelled.push(order.id.clone());
            } else {
                store
                    .order_repo()
                    .insert_new_order(&order, None)
                    .expect("insert");
            }
        }
        cancelled.reverse();
        let mut seen = Vec::new();
        let mut cursor: Option<OrderId> = None;
        for _ in 0..100 {
            let (page, next) = store
                .order_repo()
                .list_scanning(&customer, Some(Status::Cancelled), 2, cursor.as_ref(), 5)
                .expect("list");
            seen.extend(page.into_iter().map(|o| o.id));
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, cancelled, "every match, newest first, none skipped");
    }

    #[test]
    fn orders_stored_before_ready_at_read_as_ready_when_created() {
        let customer = OpenId::parse("oOLD").expect("openid");
        let now = now_utc();
        let order = order_at(&customer, now - Duration::from_secs(600));
        let mut shape = serde_json::to_value(&order).expect("shape");
        shape.as_object_mut().expect("object").remove("ready_at");
        let old: records::OrderV1 = serde_json::from_value(shape).expect("v1 shape");
        let mut bytes = vec![RECORD_V1];
        bincode::serialize_into(&mut bytes, &old).expect("v1 bytes");

        let read = decode_order(&bytes, "k").expect("reads");

        assert_eq!(read.ready_at, order.created_at);
        assert_eq!(read, order);
        let v2 = encode_order(&read).expect("encodes");
        assert_eq!(v2[0], ORDER_V2);
        assert_eq!(decode_order(&v2, "k").expect("reads"), order);
    }

    #[test]
    fn a_tipped_order_keeps_its_tip_and_history_and_an_untipped_one_its_old_bytes() {
        use crate::domain::{ChangedBy, Event, Tip};
        let customer = OpenId::parse("oTIP").expect("openid");
        let at = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time");
        let mut order = order_at(&customer, at);
        order.tip_fen = Tip::try_from(150).expect("tip");
        let bytes = encode_order(&order).expect("encodes");
        assert_eq!(bytes[0], ORDER_V4);
        assert_eq!(decode_order(&bytes, "k").expect("reads"), order);
        order
            .apply(Event::PaymentConfirmed, ChangedBy::WeChatPay, at)
            .expect("legal");
        let read = decode_order(&encode_order(&order).expect("encodes"), "k").expect("reads");
        assert_eq!((read.total_fen(), read.history().len()), (450, 1));
        order.tip_fen = Tip::default();
        assert_eq!(encode_order(&order).expect("encodes")[0], ORDER_V3);
    }

    #[test]
    fn the_order_record_is_byte_for_byte_what_earlier_releases_wrote() {
        let customer = OpenId::parse("oGOLDEN").expect("openid");
        let at = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time");
        let mut order = order_at(&customer, at);
        order.id = OrderId::parse("GOLDEN1").expect("id");
        // Frozen: what the release before storage had its own record types
        // wrote for this order (tag 2, then bincode of the fields in order).
        let written = hex::decode(concat!(
            "020700000000000000474f4c44454e3107000000000000006f474f4c44454e",
            "000000000400000000000000676174650000000000000000040000000000",
            "000067617465000000000000000000000000000000002c01000000000000",
            "000000001400000000000000323032352d31312d32345431363a30303a30",
            "305a00000000001400000000000000323032352d31312d32345431363a30",
            "303a30305a1400000000000000323032352d31312d32345431363a30303a",
            "30305a"
        ))
        .expect("hex");
        assert_eq!(encode_order(&order).expect("encodes"), written);
        assert_eq!(decode_order(&written, "k").expect("reads"), order);
    }

    #[test]
    fn an_order_keeps_its_history_and_who_caused_each_change() {
        use crate::domain::{ChangedBy, Event};
        let customer = OpenId::parse("oHIST").expect("openid");
        let courier = OpenId::parse("oCOURIER").expect("openid");
        let at = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time");
        let mut order = order_at(&customer, at);
        order.id = OrderId::parse("HIST1").expect("id");
        order
            .apply(Event::PaymentConfirmed, ChangedBy::WeChatPay, at)
            .expect("paid");
        order
            .assign(courier.clone(), ChangedBy::Courier(courier), at)
            .expect("assigned");
        // One change by an operator from before names, one by a named one.
        order.note(ChangedBy::Operator(None), "骑手下线".into(), at);
        let named = crate::domain::OperatorName::parse("li.lei").expect("name");
        order
            .apply(Event::OperatorRefund, ChangedBy::Operator(Some(named)), at)
            .expect("refunding");
        order.explain_last("顾客投诉".into());
        let bytes = encode_order(&order).expect("encodes");
        assert_eq!(bytes[0], ORDER_V3);
        assert_eq!(decode_order(&bytes, "k").expect("reads"), order);
        // Frozen: the first history record this release writes.
        let mut one = order_at(&customer, at);
        one.id = OrderId::parse("HIST2").expect("id");
        one.apply(Event::PaymentConfirmed, ChangedBy::WeChatPay, at)
            .expect("paid");
        let written = encode_order(&one).expect("encodes");
        // One change: count, at (unix ms), Some(PaymentConfirmed), Paid,
        // WeChatPay, empty note.
        let tail = hex::encode(&written[written.len() - 37..]);
        assert_eq!(
            tail,
            concat!(
                "0100000000000000",
                "00e897b69a010000",
                "01",
                "00000000",
                "01000000",
                "02000000",
                "0000000000000000"
            ),
            "the v3 history layout changed"
        );
    }

    fn samples() -> (Session, PooledId, OutboxEntry, StoredToken, CourierProfile) {
        let openid = OpenId::parse("oSAMPLE").expect("openid");
        (
            Session {
                openid: openid.clone(),
                expires_at: OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time"),
            },
            PooledId {
                value: "form-1".into(),
                uses_left: 3,
            },
            OutboxEntry {
                id: 42,
                order_id: OrderId::parse("ORDER1").expect("id"),
                to: openid.clone(),
                kind: crate::domain::MessageKind::Delivered,
                created_at_ms: 1_764_000_000_000,
                attempts: 2,
                next_attempt_ms: 1_764_000_001_000,
                via: Some(crate::domain::Via::Template("form-1".into())),
            },
            StoredToken {
                value: "TOKEN".into(),
                expires_at: 1_764_007_200,
            },
            CourierProfile {
                openid,
                name: "小王".into(),
                phone: crate::domain::PhoneNumber::parse("13800138000").expect("phone"),
                student_no: None,
                card_photo: None,
                review: crate::domain::Review::Approved,
                reason: None,
                suspended_until: None,
                applied_at: OffsetDateTime::UNIX_EPOCH,
                name_flagged: false,
                campus: None,
            },
        )
    }

    #[test]
    fn a_flagged_courier_name_is_kept_and_an_unflagged_one_keeps_the_v2_bytes() {
        let (_dir, store) = temp_store();
        let repo = store.courier_repo();
        let (_, _, _, _, mut courier) = samples();
        repo.put_courier(&courier).expect("put");
        let raw = store
            .inner
            .couriers
            .get(courier.openid.as_str())
            .expect("get");
        assert_eq!(raw.as_deref().and_then(|b| b.first()), Some(&COURIER_V2));
        courier.name_flagged = true;
        repo.put_courier(&courier).expect("put");
        let back = repo
            .get_courier(&courier.openid)
            .expect("get")
            .expect("there");
        assert_eq!(back, courier);
        courier.name_flagged = false;
        repo.put_courier(&courier).expect("put");
        let back = repo
            .get_courier(&courier.openid)
            .expect("get")
            .expect("there");
        assert!(!back.name_flagged);
    }

    #[test]
    fn withdrawals_are_found_by_status_through_the_index_old_stores_too() {
        use crate::domain::{Withdrawal, WithdrawalEvent, WithdrawalStatus};
        let (_dir, store) = temp_store();
        let repo = store.ledger_repo();
        let courier = OpenId::parse("oIndexCourier").expect("openid");
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let made: Vec<Withdrawal> = (0..3)
            .map(|i| {
                let w = Withdrawal::new(courier.clone(), 100 + i, true, at);
                repo.save_withdrawal(&w, &Default::default(), None)
                    .expect("save");
                w
            })
            .collect();
        let mut moved = made[0].clone();
        moved
            .apply(&WithdrawalEvent::Approve, "", at)
            .expect("approve");
        repo.save_withdrawal(&moved, &Default::default(), None)
            .expect("save");
        let ids = |status| {
            let mut ids: Vec<String> = repo
                .withdrawals(Some(status), None, usize::MAX, &|_| true)
                .expect("read")
                .into_iter()
                .map(|w| w.id.to_string())
                .collect();
            ids.sort();
            ids
        };
        let mut reviewing = vec![made[1].id.to_string(), made[2].id.to_string()];
        reviewing.sort();
        assert_eq!(ids(WithdrawalStatus::Reviewing), reviewing);
        assert_eq!(ids(WithdrawalStatus::Transferring), [moved.id.to_string()]);
        let only_first = repo
            .withdrawals(Some(WithdrawalStatus::Reviewing), None, 1, &|_| true)
            .expect("read");
        assert_eq!(only_first.len(), 1);
        let nobody = repo
            .withdrawals(Some(WithdrawalStatus::Reviewing), None, 10, &|_| false)
            .expect("read");
        assert!(nobody.is_empty());

        // A store written before the index: built once at start.
        store.inner.withdrawals_by_status.clear().expect("clear");
        store
            .inner
            .meta
            .remove("withdrawals_status_indexed")
            .expect("meta");
        assert!(ids(WithdrawalStatus::Reviewing).is_empty());
        assert_eq!(repo.index_withdrawal_statuses().expect("index"), 3);
        assert_eq!(repo.index_withdrawal_statuses().expect("again"), 0);
        assert_eq!(ids(WithdrawalStatus::Reviewing), reviewing);
        assert_eq!(ids(WithdrawalStatus::Transferring), [moved.id.to_string()]);
    }

    #[test]
    fn a_couriers_campus_is_kept_with_the_profile() {
        let (_dir, store) = temp_store();
        let repo = store.courier_repo();
        let (_, _, _, _, mut courier) = samples();
        for flagged in [false, true] {
            courier.name_flagged = flagged;
            courier.campus = Some(crate::domain::CampusId::parse("east").expect("id"));
            repo.put_courier(&courier).expect("put");
            let raw = store
                .inner
                .couriers
                .get(courier.openid.as_str())
                .expect("get");
            assert_eq!(raw.as_deref().and_then(|b| b.first()), Some(&COURIER_V4));
            let back = repo.get_courier(&courier.openid).expect("get");
            assert_eq!(back.as_ref(), Some(&courier));
        }
    }

    #[test]
    fn records_are_byte_for_byte_what_earlier_releases_wrote() {
        // Frozen: what the release before storage had its own record types
        // wrote for each sample.
        let (session, pooled, outbox, token, courier) = samples();
        let frozen = |h: &str| hex::decode(h).expect("hex");
        let session_bytes = frozen(concat!(
            "0107000000000000006f53414d504c451400000000000000323032352d31312d",
            "32345431363a30303a30305a"
        ));
        let pooled_bytes = frozen("010600000000000000666f726d2d3103");
        let outbox_bytes = frozen(concat!(
            "012a0000000000000006000000000000004f524445523107000000000000006f",
            "53414d504c450200000000e897b69a01000002000000e8eb97b69a0100000101",
            "0000000600000000000000666f726d2d31"
        ));
        let token_bytes = frozen("010500000000000000544f4b454e209d246900000000");
        let courier_bytes = frozen(concat!(
            "0107000000000000006f53414d504c450600000000000000e5b08fe78e8b0b00",
            "0000000000003133383030313338303030"
        ));
        assert_eq!(store(&session).expect("encodes"), session_bytes);
        assert_eq!(store(&pooled).expect("encodes"), pooled_bytes);
        assert_eq!(store(&outbox).expect("encodes"), outbox_bytes);
        assert_eq!(store(&token).expect("encodes"), token_bytes);
        assert_eq!(load::<Session>(&session_bytes, "k").ok(), Some(session));
        assert_eq!(load::<PooledId>(&pooled_bytes, "k").ok(), Some(pooled));
        assert_eq!(load::<OutboxEntry>(&outbox_bytes, "k").ok(), Some(outbox));
        assert_eq!(load::<StoredToken>(&token_bytes, "k").ok(), Some(token));
        // A courier stored before review reads as approved.
        assert_eq!(courier_of(&courier_bytes, "k").ok(), Some(courier.clone()));
        let mut reviewed = courier;
        reviewed.review = crate::domain::Review::Suspended;
        reviewed.reason = Some("no-show".into());
        reviewed.suspended_until = Some(OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000));
        reviewed.card_photo = Some(crate::domain::UploadId::generate(
            OffsetDateTime::UNIX_EPOCH,
        ));
        let v2 = encode_tagged(COURIER_V2, &records::CourierV2::from(&reviewed)).expect("encodes");
        assert_eq!(courier_of(&v2, "k").ok(), Some(reviewed));
    }

    #[test]
    fn payment_records_round_trip() {
        let mut r = PaymentRecord::new(OrderId::parse("ABC").expect("id"));
        r.prepay_id = Some("wx1".into());
        r.prepaid_at = Some(1_764_000_000);
        r.transaction_id = Some("4200".into());
        r.params = Some(PayParams {
            time_stamp: "1".into(),
            nonce_str: "n".into(),
            package: "prepay_id=wx1".into(),
            sign_type: "MD5".into(),
            pay_sign: "S".into(),
        });
        // Frozen: what the release before storage had its own record types
        // wrote for this session.
        let written = hex::decode(concat!(
            "0103000000000000004142430103000000000000007778310101000000000000",
            "003101000000000000006e0d000000000000007072657061795f69643d777831",
            "03000000000000004d44350100000000000000530100812469000000000104",
            "000000000000003432303000"
        ))
        .expect("hex");
        assert_eq!(store(&r).expect("encodes"), written);
        assert_eq!(load::<PaymentRecord>(&written, "k").ok(), Some(r));
    }
}
