//! The PostgreSQL engine: the store for more than one machine, and the
//! only module that writes SQL.
//!
//! Tables (`migrations/`): one per relation, each value kept as its
//! storage record (`body`, the bytes the sled engine keeps) beside the
//! columns it is found by; the ledger's legs in their own table, from
//! which the database itself keeps the balances and refuses a posting
//! that does not sum to zero or a balance below zero.
//!
//! Each repository a caller takes gets its own connection task
//! ([`conn::Conn`]): writes queue and return, reads see them, a commit
//! answers once they are committed. The schema is migrated at open under
//! an advisory lock, so nodes starting together take turns.

pub(super) mod conn;
mod copy;
mod ledger;
mod orders;
mod people;
mod statement;

pub use ledger::PgLedger;
pub use orders::PgOrders;

pub use copy::PgDump;
pub use people::{
    PgCouriers, PgFormIds, PgObjects, PgOperators, PgOutbox, PgPayments, PgSessions, PgShareCodes,
    PgTokens, PgUploads,
};

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use self::conn::{engine, Conn};
use super::StorageError;
use crate::domain::Sequence;

/// The schema's versions, applied in order, each once.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_schema.sql")),
    (2, include_str!("migrations/0002_object_visibility.sql")),
    (
        3,
        include_str!("migrations/0003_balances_checked_at_commit.sql"),
    ),
    (
        4,
        include_str!("migrations/0004_orders_status_index_dropped.sql"),
    ),
];
/// The advisory lock nodes take while migrating ("lastmile" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c61_7374_6d69_6c65;
/// The advisory lock a process holds while it uses the database, as sled's
/// lock on its directory: one process per store ("lastmil!").
const IN_USE_LOCK: i64 = 0x6c61_7374_6d69_6c21;
/// How long opening waits for a process that just stopped to let go.
const IN_USE_WAIT: Duration = Duration::from_secs(3);
/// Longest wait for a connection from the pool, or for a new one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the probe proves the database takes a write.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// The database counts as writable while the last good probe is this recent.
const PROBE_FRESH: Duration = Duration::from_secs(10);

struct Inner {
    /// Taken only by `Drop`, which shuts it down.
    runtime: Option<tokio::runtime::Runtime>,
    /// Where connection tasks, the probe and blocking waits run.
    handle: tokio::runtime::Handle,
    pool: Pool,
    /// The last probe got an answer.
    healthy: Arc<AtomicBool>,
    /// When the probe last committed a write (unix ms).
    probe_ok_ms: Arc<AtomicI64>,
    ids: Sequence,
    /// The connection that holds the in-use lock (closed with the runtime).
    _holder: tokio_postgres::Client,
    /// Failed commits, real or injected.
    faults: conn::Faults,
    /// Every repository's connection, for a flush of all of them.
    conns: std::sync::Mutex<Vec<Conn>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // May run on an async thread: never block there.
            runtime.shutdown_background();
        }
    }
}

/// A PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl PgStore {
    /// Connects to `url` with a pool of `pool` connections, migrates the
    /// schema, and starts the probe.
    pub fn open(url: &str, pool: usize) -> Result<Self, StorageError> {
        let config = config_of(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lastmile-postgres")
            .enable_all()
            .build()
            .map_err(engine)?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(engine)?;
        let handle = runtime.handle().clone();
        let opened = on(&handle, {
            let pool = pool.clone();
            async move {
                let mark = migrate(pool).await?;
                Ok::<_, StorageError>((mark, hold(config).await?))
            }
        })
        .and_then(|opened| opened);
        let (mark, holder) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // May run on an async thread: never block there.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                healthy: Arc::new(AtomicBool::new(true)),
                probe_ok_ms: Arc::new(AtomicI64::new(now_ms())),
                ids: Sequence::after(mark),
                conns: std::sync::Mutex::new(Vec::new()),
                faults: conn::Faults::default(),
                _holder: holder,
                runtime: Some(runtime),
                handle,
            }),
        };
        store.start_probe();
        Ok(store)
    }

    /// A new connection task (one per repository taken).
    fn conn(&self) -> Conn {
        let conn = Conn::start(
            &self.inner.handle,
            self.inner.pool.clone(),
            self.inner.faults.clone(),
        );
        if let Ok(mut conns) = self.inner.conns.lock() {
            conns.push(conn.clone());
        }
        conn
    }

    /// The orders shards' repository.
    pub fn order_repo(&self) -> PgOrders {
        PgOrders {
            conn: self.conn(),
            ids: self.inner.ids.clone(),
            store: self.clone(),
        }
    }

    /// The ledger's repository.
    pub fn ledger_repo(&self) -> PgLedger {
        PgLedger {
            conn: self.conn(),
            ids: self.inner.ids.clone(),
        }
    }

    /// Makes the next `n` commits fail (fault injection for tests).
    pub fn inject_commit_failures(&self, n: u32) {
        if let Ok(mut injected) = self.inner.faults.injected.lock() {
            *injected = (injected.0 + 1, n);
        }
    }

    /// Sets an account's balance with no posting behind it (fault
    /// injection for tests: the database's own checks allow it).
    pub fn inject_unposted_balance(
        &self,
        account: &crate::domain::Account,
        fen: i64,
    ) -> Result<(), StorageError> {
        let conn = self.conn();
        conn.write(
            "INSERT INTO ledger_balances (account, fen) VALUES ($1, $2) \
             ON CONFLICT (account) DO UPDATE SET fen = EXCLUDED.fen",
            conn::params![account.key(), fen],
        )?;
        on(&self.inner.handle, conn.commit())?
    }

    /// The sessions actor's repository.
    pub fn session_repo(&self) -> PgSessions {
        PgSessions(self.conn())
    }

    /// The operators actor's repository.
    pub fn operator_repo(&self) -> PgOperators {
        PgOperators(self.conn())
    }

    /// The dispatcher's repository of courier profiles.
    pub fn courier_repo(&self) -> PgCouriers {
        PgCouriers(self.conn())
    }

    /// The token keeper's repository.
    pub fn token_repo(&self) -> PgTokens {
        PgTokens(self.conn())
    }

    /// The share-code actor's repository.
    pub fn share_code_repo(&self) -> PgShareCodes {
        PgShareCodes(self.conn())
    }

    /// The payments actor's repository.
    pub fn payment_repo(&self) -> PgPayments {
        PgPayments::new(self.conn())
    }

    /// The uploads actor's repository.
    pub fn upload_repo(&self) -> PgUploads {
        PgUploads(self.conn())
    }

    /// The form-id pool's repository.
    pub fn formid_repo(&self) -> PgFormIds {
        PgFormIds {
            conn: self.conn(),
            ids: self.inner.ids.clone(),
        }
    }

    /// The notifier's repository.
    pub fn outbox_repo(&self) -> PgOutbox {
        PgOutbox(self.conn())
    }

    /// Local objects, as rows (every node serves them).
    pub fn object_repo(&self) -> PgObjects {
        PgObjects(self.conn())
    }

    /// True when the database answered the last probe.
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// True when the last commit worked and a probe committed a write
    /// recently.
    pub fn is_writable(&self) -> bool {
        let age = now_ms() - self.inner.probe_ok_ms.load(Ordering::Relaxed);
        !self.inner.faults.failed.load(Ordering::SeqCst)
            && self.is_healthy()
            && age <= PROBE_FRESH.as_millis() as i64
    }

    /// Resolves when every repository's writes so far are committed.
    pub async fn commit(&self) -> Result<(), StorageError> {
        let conns: Vec<Conn> = match self.inner.conns.lock() {
            Ok(conns) => conns.clone(),
            Err(_) => return Err(StorageError::Closed),
        };
        for conn in conns {
            conn.commit().await?;
        }
        Ok(())
    }

    /// [`Self::commit`], blocking (shutdown, the command line).
    pub fn flush_blocking(&self) -> Result<(), StorageError> {
        let store = self.clone();
        on(&self.inner.handle, async move { store.commit().await })?
    }

    fn start_probe(&self) {
        let (pool, healthy, ok_ms, faults) = (
            self.inner.pool.clone(),
            self.inner.healthy.clone(),
            self.inner.probe_ok_ms.clone(),
            self.inner.faults.clone(),
        );
        self.inner.handle.spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let probe = tokio::time::timeout(PROBE_EVERY * 2, probe(&pool)).await;
                let ok = matches!(probe, Ok(Ok(())));
                healthy.store(ok, Ordering::Relaxed);
                if ok {
                    // A write committed: what failed before is behind us.
                    ok_ms.store(now_ms(), Ordering::Relaxed);
                    faults.failed.store(false, Ordering::SeqCst);
                }
            }
        });
    }
}

fn config_of(url: &str) -> Result<tokio_postgres::Config, StorageError> {
    url.parse().map_err(engine)
}

/// Takes the in-use lock on a connection of its own, kept for as long as
/// the store is open; refuses a database another process uses.
async fn hold(config: tokio_postgres::Config) -> Result<tokio_postgres::Client, StorageError> {
    let (client, connection) = config.connect(NoTls).await.map_err(engine)?;
    tokio::spawn(connection);
    let until = tokio::time::Instant::now() + IN_USE_WAIT;
    loop {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&IN_USE_LOCK])
            .await
            .map_err(engine)?;
        if row.try_get::<_, bool>(0).map_err(engine)? {
            return Ok(client);
        }
        if tokio::time::Instant::now() >= until {
            return Err(StorageError::InUse);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One committed write: the database is up and takes writes.
async fn probe(pool: &Pool) -> Result<(), StorageError> {
    let client = pool.get().await.map_err(engine)?;
    client
        .execute(
            "INSERT INTO meta (key, body) VALUES ('probe', int8send($1)) \
             ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body",
            &[&now_ms()],
        )
        .await
        .map_err(engine)?;
    Ok(())
}

/// Applies the migrations not applied yet, under the advisory lock;
/// answers the highest id the store holds (the sequence goes on above it).
async fn migrate(pool: Pool) -> Result<u64, StorageError> {
    let mut client = pool.get().await.map_err(engine)?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(engine)?;
    let applied = apply(&mut client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    applied?;
    unlocked.map_err(engine)?;
    let row = client
        .query_one(
            "SELECT greatest( \
               (SELECT coalesce(max(id), 0) FROM outbox), \
               (SELECT coalesce(max(seq), 0) FROM ledger_inbox), \
               (SELECT coalesce(max(seq), 0) FROM ledger_entries), \
               (SELECT coalesce(max(id), 0) FROM form_ids))",
            &[],
        )
        .await
        .map_err(engine)?;
    let mark: i64 = row.try_get(0).map_err(engine)?;
    Ok(u64::try_from(mark).unwrap_or(0))
}

async fn apply(client: &mut deadpool_postgres::Object) -> Result<(), StorageError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS lastmile_migrations \
             (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(engine)?;
    let rows = client
        .query("SELECT version FROM lastmile_migrations", &[])
        .await
        .map_err(engine)?;
    let done: Vec<i32> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let tx = client.transaction().await.map_err(engine)?;
        tx.batch_execute(sql).await.map_err(engine)?;
        tx.execute(
            "INSERT INTO lastmile_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(engine)?;
        tx.commit().await.map_err(engine)?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    Ok(())
}

/// Runs `work` on the engine's runtime and waits for it from any thread
/// (an actor's included: it never blocks the runtime it waits on).
fn on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, StorageError> {
    let (tx, rx) = std_mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv().map_err(|_| StorageError::Closed)
}

/// A database URL with its password masked (for logs and errors).
pub fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let Some((user_info, hosts)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match user_info.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => user_info.to_owned(),
    };
    let tail = mask_query_password(tail);
    format!("{scheme}://{user}@{hosts}{tail}")
}

/// `?password=…` in a URL's query, masked.
fn mask_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// A row count for LIMIT (callers pass `usize::MAX` for "all").
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    crate::domain::unix_ms(crate::domain::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_hosts_and_never_its_password() {
        assert_eq!(
            masked_url(
                "postgres://lastmile:s3cret@h1:5432,h2:5432/db?target_session_attrs=read-write"
            ),
            "postgres://lastmile:***@h1:5432,h2:5432/db?target_session_attrs=read-write"
        );
        assert_eq!(
            masked_url("postgres://u@127.0.0.1/db?password=s3cret&sslmode=disable"),
            "postgres://u@127.0.0.1/db?password=***&sslmode=disable"
        );
        assert_eq!(
            masked_url("postgres://127.0.0.1/db"),
            "postgres://127.0.0.1/db"
        );
        assert_eq!(masked_url("host=/tmp user=u"), "host=/tmp user=u");
    }
}
