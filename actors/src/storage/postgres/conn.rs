//! One owner's connection. Writes are queued and return at once; reads
//! wait for their rows and see every write queued before them; a commit
//! resolves once every write queued before it is committed. A task on the
//! engine's runtime takes what is queued as one batch: it sends the
//! batch's writes pipelined inside one transaction and commits at the
//! batch's end, so owners that write while a COMMIT is under way share the
//! next one (group commit), as the sled engine shares a flush.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::storage::{Committing, StorageError};

pub(super) use super::statement::Param;
use super::statement::{fold, Sendable, Statement};

/// Most operations one batch takes.
const MAX_BATCH: usize = 512;
/// How long writes lost with their connection fail the commits covering
/// them (see [`Lost::fails`]).
const LOST_REMEMBERED: Duration = Duration::from_secs(10);
/// Longest a read waits for its rows before it answers an error (a
/// database that hangs must not hang its owner for good).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Boxes query parameters: `params![a, b]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as $crate::storage::postgres::conn::Param),*]
    };
}
pub(super) use params;

/// Statements written together: never split between two transactions.
pub(super) type Statements = Vec<Statement>;

enum Op {
    Write {
        seq: u64,
        statements: Statements,
    },
    Read {
        sql: &'static str,
        params: Vec<Param>,
        reply: std_mpsc::SyncSender<Result<Vec<Row>, StorageError>>,
    },
    Commit {
        upto: u64,
        reply: oneshot::Sender<Result<(), StorageError>>,
    },
}

/// What every connection of a store shares about failed commits.
#[derive(Clone, Default)]
pub(super) struct Faults {
    /// Fault injection for tests, as sled's failed flush (which fails
    /// every writer waiting on it): each injection (numbered here, with
    /// how many commits it fails) fails the next commits of every
    /// connection.
    pub(super) injected: Arc<Mutex<(u64, u32)>>,
    /// The last commit failed: nothing since is known durable (`/readyz`).
    pub(super) failed: Arc<AtomicBool>,
}

/// The queue to one owner's connection task; cheap to clone.
#[derive(Clone)]
pub(super) struct Conn {
    /// The last write's number and the queue, under one lock so numbers
    /// reach the task in order.
    queue: Arc<Mutex<(u64, mpsc::UnboundedSender<Op>)>>,
}

impl Conn {
    /// Starts a connection task on `runtime`, taking connections from `pool`.
    pub(super) fn start(runtime: &tokio::runtime::Handle, pool: Pool, faults: Faults) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        runtime.spawn(Task::new(pool, faults).run(rx));
        Self {
            queue: Arc::new(Mutex::new((0, tx))),
        }
    }

    /// Queues a write.
    pub(super) fn write(&self, sql: &'static str, params: Vec<Param>) -> Result<(), StorageError> {
        self.write_all(vec![Statement::One(sql, params)])
    }

    /// Queues writes that commit together or not at all.
    pub(super) fn write_all(&self, statements: Statements) -> Result<(), StorageError> {
        if statements.is_empty() {
            return Ok(());
        }
        let mut queue = self.queue.lock().map_err(|_| StorageError::Closed)?;
        queue.0 += 1;
        let seq = queue.0;
        queue
            .1
            .send(Op::Write { seq, statements })
            .map_err(|_| StorageError::Closed)
    }

    /// Runs a query after every queued write; answers its rows.
    pub(super) fn read(
        &self,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<Vec<Row>, StorageError> {
        let (reply, rows) = std_mpsc::sync_channel(1);
        {
            let queue = self.queue.lock().map_err(|_| StorageError::Closed)?;
            queue
                .1
                .send(Op::Read { sql, params, reply })
                .map_err(|_| StorageError::Closed)?;
        }
        rows.recv_timeout(READ_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| StorageError::Commit("the database did not answer".into()))?
    }

    /// Resolves when every write queued so far is committed.
    pub(super) fn commit(&self) -> Committing {
        let (reply, done) = oneshot::channel();
        let sent = self.queue.lock().map_err(|_| ()).and_then(|queue| {
            let upto = queue.0;
            queue.1.send(Op::Commit { upto, reply }).map_err(|_| ())
        });
        Box::pin(async move {
            sent.map_err(|()| StorageError::Closed)?;
            done.await.map_err(|_| StorageError::Closed)?
        })
    }
}

/// The connection task's state.
struct Task {
    pool: Pool,
    faults: Faults,
    client: Option<Object>,
    /// The first and last write of the open transaction.
    open: Option<(u64, u64)>,
    /// Writes that were not committed (ranges of numbers), until the
    /// commits covering them have answered.
    lost: Vec<Lost>,
    /// The highest write number a commit answered for.
    answered: u64,
    /// Why the last writes were lost.
    why: String,
    /// The last injection this connection saw, and its failures left.
    seen_injection: (u64, u32),
}

impl Task {
    fn new(pool: Pool, faults: Faults) -> Self {
        Self {
            pool,
            faults,
            client: None,
            open: None,
            lost: Vec::new(),
            answered: 0,
            why: String::new(),
            seen_injection: (0, 0),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Op>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.run_batch(batch).await;
        }
        self.finish_transaction().await;
    }

    async fn run_batch(&mut self, batch: Vec<Op>) {
        let mut writes = Vec::new();
        let mut waiters = Vec::new();
        for op in batch {
            match op {
                Op::Write { seq, statements } => {
                    writes.extend(statements.into_iter().map(|s| (seq, s)))
                }
                Op::Read { sql, params, reply } => {
                    self.send_writes(std::mem::take(&mut writes), false).await;
                    let _ = reply.send(self.query(sql, &params).await);
                }
                Op::Commit { upto, reply } => waiters.push((upto, reply)),
            }
        }
        self.send_writes(writes, true).await;
        self.finish_transaction().await;
        // Connections go back to the pool between batches: owners share it.
        self.client = None;
        for (upto, reply) in waiters {
            let _ = reply.send(self.outcome(upto));
        }
    }

    /// The connection, from the pool when this task holds none. Never a
    /// new one inside a transaction: the transaction's writes went down
    /// with its connection, and a COMMIT on another one would answer
    /// success for nothing ("there is no transaction in progress").
    async fn client(&mut self) -> Result<&Object, StorageError> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            if self.open.is_some() {
                return Err(lost_connection());
            }
            let client = self.pool.get().await.map_err(engine)?;
            self.client = Some(client);
        }
        self.client.as_ref().ok_or(StorageError::Closed)
    }

    /// Sends `writes` pipelined inside the open transaction (begun here);
    /// with `commit`, the COMMIT goes in the same round trip.
    async fn send_writes(&mut self, writes: Vec<(u64, Statement)>, commit: bool) {
        let (Some(first), Some(last)) = (writes.first(), writes.last()) else {
            return;
        };
        let range = (self.open.map_or(first.0, |o| o.0), last.0);
        if commit && self.injected_failure() {
            // Not sent: the injection stands for a COMMIT the server
            // refused (a transaction the batch's reads opened is rolled back).
            let injected = StorageError::Commit("injected commit failure".into());
            return match self.open {
                Some(_) => self.lose(range, &injected).await,
                None => self.record_loss(range, &injected, false),
            };
        }
        let sendable = fold(writes.into_iter().map(|(_, statement)| statement));
        match self.pipeline(&sendable, commit).await {
            Err(e) => self.lose(range, &e).await,
            Ok(()) if commit => {
                self.open = None;
                self.faults.failed.store(false, Ordering::SeqCst);
            }
            Ok(()) => self.open = Some(range),
        }
    }

    async fn pipeline(&mut self, writes: &[Sendable], commit: bool) -> Result<(), StorageError> {
        let open = self.open.is_some();
        let client = self.client().await?;
        // Every statement is prepared before any is sent, so they reach
        // the server in queue order, right behind the BEGIN (one round
        // trip for the lot).
        let mut statements = Vec::with_capacity(writes.len());
        for write in writes {
            statements.push(client.prepare_cached(&write.sql).await.map_err(engine)?);
        }
        let args: Vec<Vec<&(dyn ToSql + Sync)>> = writes.iter().map(|w| refs(&w.params)).collect();
        let begin = async {
            match open {
                true => Ok(()),
                false => client.batch_execute("BEGIN").await,
            }
        };
        let sent = statements
            .iter()
            .zip(&args)
            .map(|(statement, args)| client.execute(statement, args));
        // After a failed statement the server ends the transaction at
        // COMMIT with a rollback (and no error): the statement's error
        // says the writes are lost.
        let end = async {
            match commit {
                true => client.batch_execute("COMMIT").await,
                false => Ok(()),
            }
        };
        let (began, results, ended) = futures::join!(begin, futures::future::join_all(sent), end);
        began.map_err(engine)?;
        for result in results {
            result.map_err(engine)?;
        }
        ended.map_err(engine)
    }

    async fn query(
        &mut self,
        sql: &'static str,
        params: &[Param],
    ) -> Result<Vec<Row>, StorageError> {
        let answer = tokio::time::timeout(READ_TIMEOUT, self.run_query(sql, params)).await;
        let result =
            answer.unwrap_or_else(|_| Err(StorageError::Commit("a read timed out".into())));
        if let (Err(e), Some(open)) = (&result, self.open) {
            // The transaction is aborted: its writes are lost.
            let why = e.to_string();
            self.lose(open, &StorageError::Commit(why)).await;
        }
        result
    }

    async fn run_query(
        &mut self,
        sql: &'static str,
        params: &[Param],
    ) -> Result<Vec<Row>, StorageError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(engine)?;
        client
            .query(&statement, &refs(params))
            .await
            .map_err(engine)
    }

    /// Commits the open transaction, if any.
    async fn finish_transaction(&mut self) {
        let Some(range) = self.open.take() else {
            return;
        };
        if self.injected_failure() {
            self.lose(
                range,
                &StorageError::Commit("injected commit failure".into()),
            )
            .await;
            return;
        }
        // On the transaction's own connection or not at all.
        let committed = match self.client.as_ref().filter(|c| !c.is_closed()) {
            Some(client) => client.batch_execute("COMMIT").await.map_err(engine),
            None => Err(lost_connection()),
        };
        match committed {
            Ok(()) => self.faults.failed.store(false, Ordering::SeqCst),
            Err(e) => self.lose(range, &e).await,
        }
    }

    /// True when an injected failure is this commit's to take.
    fn injected_failure(&mut self) -> bool {
        let Ok(injected) = self.faults.injected.lock().map(|i| *i) else {
            return false;
        };
        if injected.0 != self.seen_injection.0 {
            self.seen_injection = injected;
        }
        if self.seen_injection.1 == 0 {
            return false;
        }
        self.seen_injection.1 -= 1;
        true
    }

    /// Writes in `range` are lost: the transaction is rolled back, and the
    /// commits covering them answer `e`.
    async fn lose(&mut self, range: (u64, u64), e: &StorageError) {
        let dropped = self.client.as_ref().is_none_or(|c| c.is_closed());
        self.record_loss(range, e, dropped);
        if let Some(client) = self.client.take() {
            if !client.is_closed() && client.batch_execute("ROLLBACK").await.is_ok() {
                self.client = Some(client);
            }
        }
    }

    /// Notes that writes in `range` are lost (`dropped`: with their
    /// connection, in an outage).
    fn record_loss(&mut self, range: (u64, u64), e: &StorageError, dropped: bool) {
        tracing::error!(error = %crate::errors::chain(e), "a PostgreSQL transaction failed");
        self.faults.failed.store(true, Ordering::SeqCst);
        self.open = None;
        self.lost.push(Lost {
            range,
            dropped: dropped.then(Instant::now),
        });
        self.why = crate::errors::chain(e);
    }

    /// What a commit covering writes up to `upto` answers.
    fn outcome(&mut self, upto: u64) -> Result<(), StorageError> {
        let since = self.answered;
        self.answered = self.answered.max(upto);
        let failed = self.lost.iter().any(|l| l.fails(upto, since));
        let answered = self.answered;
        self.lost.retain(|l| l.range.1 > answered || l.remembered());
        if failed {
            Err(StorageError::Commit(self.why.clone()))
        } else {
            Ok(())
        }
    }
}

/// Writes that were never committed.
struct Lost {
    /// Their numbers, first and last.
    range: (u64, u64),
    /// When their connection went down with them (a database outage).
    dropped: Option<Instant>,
}

impl Lost {
    /// True when a commit covering writes up to `upto`, the commits before
    /// it having covered up to `since`, must fail. A commit answers for
    /// every write before it, and the waiter who made a lost write may ask
    /// only after another waiter was told of the loss: so in an outage a
    /// lost range fails every commit covering it for a while, not only the
    /// first. (A write's own ticket would be exact; commits carry none.)
    fn fails(&self, upto: u64, since: u64) -> bool {
        self.range.0 <= upto && (self.range.1 > since || self.remembered())
    }

    /// An outage's loss is remembered for [`LOST_REMEMBERED`].
    fn remembered(&self) -> bool {
        self.dropped
            .is_some_and(|at| at.elapsed() < LOST_REMEMBERED)
    }
}

/// The connection of an open transaction went away.
fn lost_connection() -> StorageError {
    StorageError::Commit("the connection of an open transaction was lost".into())
}

/// A database error as the engine's; a server's error in its own words.
pub(super) fn engine(e: impl std::error::Error + Send + Sync + 'static) -> StorageError {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    match boxed.downcast::<tokio_postgres::Error>() {
        Ok(pg) if pg.as_db_error().is_some() => StorageError::Engine(Box::new(ServerSaid(*pg))),
        Ok(pg) => StorageError::Engine(pg),
        Err(other) => StorageError::Engine(other),
    }
}

/// A tokio-postgres error the server answered, shown with the server's
/// message (tokio-postgres's own `Display` says only "db error").
#[derive(Debug)]
struct ServerSaid(tokio_postgres::Error);

impl std::fmt::Display for ServerSaid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(server) => server.fmt(f),
            None => self.0.fmt(f),
        }
    }
}

impl std::error::Error for ServerSaid {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Parameters as tokio-postgres takes them.
pub(super) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as _).collect()
}
