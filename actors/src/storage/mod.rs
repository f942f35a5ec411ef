//! Durable state: one repository trait per owner, over domain values, and
//! the engines behind them.
//!
//! Each actor gets the repository of its own data only ([`OrderRepo`],
//! [`LedgerRepo`], [`PaymentRepo`], [`SessionRepo`], [`FormIdRepo`],
//! [`TokenRepo`], [`ShareCodeRepo`], [`CourierRepo`], [`OutboxRepo`],
//! [`UploadRepo`], [`OperatorRepo`], [`ObjectRepo`]), handed to its `start()` by the
//! wiring, so reading another actor's data does not compile; the
//! [`Engine`] (open, health, durability) stays with the wiring. The one
//! shared relation is the outbox: the orders shards write an entry with
//! the change it announces, the notifier reads and removes it.
//!
//! Writes are staged: they return at once, the owner reads them back at
//! once, and [`OrderRepo::commit`] (every repository has one) is the one
//! wait, answering when every write made through that repository before
//! it is durable (on sled, every write of the store; on PostgreSQL, each
//! repository is a connection of its own). An actor
//! changes its state and stages its writes in one handler, in order, and
//! acknowledges after the commit; that is why the writes are plain calls
//! and only the commit is async.
//!
//! Ids come from the application ([`crate::domain::Sequence`] and the
//! domain's own ids), never from an engine, so a store can move between
//! engines (`lastmile store copy`).

pub mod copy;
mod couriers;
mod formids;
mod ledger;
mod objects;
mod operators;
mod orders;
mod outbox;
mod payments;
pub mod postgres;
mod records;
mod sessions;
mod sharecodes;
pub mod sled;
mod tokens;
mod uploads;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use couriers::CourierRepo;
pub use formids::FormIdRepo;
pub use ledger::LedgerRepo;
pub use objects::ObjectRepo;
pub use operators::OperatorRepo;
pub use orders::OrderRepo;
pub use outbox::OutboxRepo;
pub use payments::PaymentRepo;
pub use sessions::SessionRepo;
pub use sharecodes::ShareCodeRepo;
pub use tokens::TokenRepo;
pub use uploads::UploadRepo;

/// A commit under way: resolves when every write made before it is durable.
pub type Committing = Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send>>;

/// A storage failure, whatever the engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The engine failed to read or write (I/O, a lost connection).
    #[error("storage failed: {0}")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A commit failed; every writer waiting on it gets this.
    #[error("storage commit failed: {0}")]
    Commit(String),
    /// A stored record does not decode.
    #[error("stored record {key} is corrupt")]
    Corrupt {
        /// Which key.
        key: String,
    },
    /// The store is shutting down.
    #[error("storage is closed")]
    Closed,
    /// Another process uses the store.
    #[error("the store is in use by another lastmile process")]
    InUse,
    /// The storage directory cannot be created or made private.
    #[error("storage directory {path}: {source}")]
    Dir {
        /// Which directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The engine a service runs on; cheap to clone. It hands each owner its
/// repository.
#[derive(Clone)]
pub enum Engine {
    /// The embedded store in one directory (the default).
    Sled(sled::SledStore),
    /// A PostgreSQL database, for more than one machine.
    Postgres(postgres::PgStore),
}

impl Engine {
    /// Opens (or creates) a sled store at `path`, committing at most once
    /// per `commit_window`.
    pub fn sled(path: &Path, commit_window: Duration) -> Result<Self, StorageError> {
        sled::SledStore::open(path, commit_window).map(Engine::Sled)
    }

    /// Connects to the PostgreSQL database at `url` with a pool of `pool`
    /// connections and migrates its schema.
    pub fn postgres(url: &str, pool: usize) -> Result<Self, StorageError> {
        postgres::PgStore::open(url, pool).map(Engine::Postgres)
    }

    /// True when the store answers a read.
    pub fn is_healthy(&self) -> bool {
        match self {
            Engine::Sled(s) => s.is_healthy(),
            Engine::Postgres(p) => p.is_healthy(),
        }
    }

    /// True when the last commit worked and a write got through recently
    /// (what `/readyz` reports).
    pub fn is_writable(&self) -> bool {
        match self {
            Engine::Sled(s) => s.is_writable(),
            Engine::Postgres(p) => p.is_writable(),
        }
    }

    /// Waits until every write made before this call is durable.
    pub async fn commit(&self) -> Result<(), StorageError> {
        match self {
            Engine::Sled(s) => s.commit().await,
            Engine::Postgres(p) => p.commit().await,
        }
    }

    /// Makes everything written durable, blocking (shutdown, the CLI);
    /// call off the async threads.
    pub fn flush_blocking(&self) -> Result<(), StorageError> {
        match self {
            Engine::Sled(s) => s.flush_blocking(),
            Engine::Postgres(p) => p.flush_blocking(),
        }
    }

    /// The repository of local objects: beside a sled store, public ones in
    /// `public_dir` (`objects.local_dir`) and photos in the store's
    /// directory; on PostgreSQL, rows (`public_dir` unused).
    pub fn object_repo(&self, public_dir: &Path) -> Arc<dyn ObjectRepo> {
        match self {
            Engine::Sled(s) => Arc::new(s.object_repo(public_dir)),
            Engine::Postgres(p) => Arc::new(p.object_repo()),
        }
    }

    /// The whole store, for moving it (`lastmile store copy`); public
    /// objects beside a sled store are in `public_dir`.
    pub fn dump(&self, public_dir: &Path) -> Box<dyn copy::Dump> {
        match self {
            Engine::Sled(s) => Box::new(sled::SledDump::new(s.clone(), s.object_repo(public_dir))),
            Engine::Postgres(p) => Box::new(postgres::PgDump::new(p.clone())),
        }
    }

    /// Makes the next `n` commits fail (fault injection for tests).
    #[doc(hidden)]
    pub fn inject_commit_failures(&self, n: u32) {
        match self {
            Engine::Sled(s) => s.inject_flush_failures(n),
            Engine::Postgres(p) => p.inject_commit_failures(n),
        }
    }

    /// Sets an account's balance with no posting behind it: a book that
    /// does not balance (fault injection for tests).
    #[doc(hidden)]
    pub fn inject_unposted_balance(
        &self,
        account: &crate::domain::Account,
        fen: i64,
    ) -> Result<(), StorageError> {
        match self {
            Engine::Sled(s) => s.inject_unposted_balance(account, fen),
            Engine::Postgres(p) => p.inject_unposted_balance(account, fen),
        }
    }
}

/// One getter per owner's repository, answered by whichever engine runs.
macro_rules! repositories {
    ($($(#[$doc:meta])* $name:ident -> $repo:ident;)*) => {
        impl Engine {
            $($(#[$doc])*
            pub fn $name(&self) -> Arc<dyn $repo> {
                match self {
                    Engine::Sled(s) => Arc::new(s.$name()),
                    Engine::Postgres(p) => Arc::new(p.$name()),
                }
            })*
        }
    };
}

repositories! {
    /// The orders shards' repository.
    order_repo -> OrderRepo;
    /// The ledger's repository.
    ledger_repo -> LedgerRepo;
    /// The notifier's outbox.
    outbox_repo -> OutboxRepo;
    /// The payments actor's repository.
    payment_repo -> PaymentRepo;
    /// The form-id pool's repository.
    formid_repo -> FormIdRepo;
    /// The token refresher's repository.
    token_repo -> TokenRepo;
    /// The share-code actor's repository.
    share_code_repo -> ShareCodeRepo;
    /// The dispatcher's repository.
    courier_repo -> CourierRepo;
    /// The sessions actor's repository.
    session_repo -> SessionRepo;
    /// The uploads actor's repository.
    upload_repo -> UploadRepo;
    /// The operators actor's repository.
    operator_repo -> OperatorRepo;
}
