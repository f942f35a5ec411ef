//! The operators actor: named operators with roles, each with a bearer
//! token that is shown once and stored only as its SHA-256. Sign-ins read
//! a shared cache of live tokens (no mailbox round trip); adding and
//! revoking go through the actor, which keeps the cache and the tree in
//! step. The command line uses the same functions on the storage directly
//! while the service is stopped ([`add_to`], [`revoke_in`]).

use std::sync::Arc;

use actix::prelude::*;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{now_utc, OperatorName, OperatorRecord, Role};
use crate::storage::{OperatorRepo, StorageError};

/// Why an operator request failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// An operator of that name holds a live token.
    #[error("an operator named {0} exists (revoke it first)")]
    Exists(String),
    /// No live operator of that name.
    #[error("no operator named {0}")]
    NotFound(String),
    /// sled failed.
    #[error("storage is unavailable")]
    Storage(#[from] StorageError),
    /// The actor is restarting or gone.
    #[error("the operators actor is unavailable")]
    Mailbox(#[from] MailboxError),
}

/// Who a live operator token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Their name.
    pub name: OperatorName,
    /// Their role.
    pub role: Role,
    /// The campuses they are limited to (empty: all).
    pub campuses: Arc<[String]>,
}

type Live = Arc<DashMap<[u8; 32], SignedIn>>;

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn signed_in(record: &OperatorRecord) -> SignedIn {
    SignedIn {
        name: record.name.clone(),
        role: record.role,
        campuses: record.campuses.clone().into(),
    }
}

/// Adds an operator to the tree (not yet durable) and answers the record
/// and its token, the only time the token exists outside the caller.
pub fn add_to(
    repo: &dyn OperatorRepo,
    name: OperatorName,
    role: Role,
    campuses: Vec<String>,
) -> Result<(OperatorRecord, String), OperatorError> {
    let taken = repo
        .all_operators()?
        .iter()
        .any(|o| o.name == name && o.revoked_at.is_none());
    if taken {
        return Err(OperatorError::Exists(name.as_str().to_owned()));
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = format!(
        "op_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let record = OperatorRecord {
        name,
        role,
        campuses,
        token_hash: token_hash(&token),
        created_at: now_utc(),
        revoked_at: None,
    };
    repo.put_operator(&record)?;
    Ok((record, token))
}

/// Revokes an operator's token in the tree (not yet durable).
pub fn revoke_in(
    repo: &dyn OperatorRepo,
    name: &OperatorName,
) -> Result<OperatorRecord, OperatorError> {
    let mut record = repo
        .all_operators()?
        .into_iter()
        .find(|o| o.name == *name && o.revoked_at.is_none())
        .ok_or_else(|| OperatorError::NotFound(name.as_str().to_owned()))?;
    record.revoked_at = Some(now_utc());
    repo.put_operator(&record)?;
    Ok(record)
}

/// The actor.
pub struct OperatorActor {
    store: Arc<dyn OperatorRepo>,
    live: Live,
}

impl Actor for OperatorActor {
    type Context = Context<Self>;
}

impl Supervised for OperatorActor {}

/// Adds an operator; answers the record and the token.
#[derive(Message)]
#[rtype(result = "Result<(OperatorRecord, String), OperatorError>")]
pub struct Add {
    /// Name.
    pub name: OperatorName,
    /// Role.
    pub role: Role,
    /// Campus limits.
    pub campuses: Vec<String>,
}

/// Revokes an operator's token at once.
#[derive(Message)]
#[rtype(result = "Result<OperatorRecord, OperatorError>")]
pub struct Revoke {
    /// Name.
    pub name: OperatorName,
}

/// Every operator, revoked ones included.
#[derive(Message)]
#[rtype(result = "Result<Vec<OperatorRecord>, OperatorError>")]
pub struct List;

impl Handler<Add> for OperatorActor {
    type Result = ResponseFuture<Result<(OperatorRecord, String), OperatorError>>;

    fn handle(
        &mut self,
        Add {
            name,
            role,
            campuses,
        }: Add,
        _: &mut Self::Context,
    ) -> Self::Result {
        let added = add_to(self.store.as_ref(), name, role, campuses);
        let (store, live) = (self.store.clone(), self.live.clone());
        Box::pin(async move {
            let (record, token) = added?;
            store.commit().await?;
            // Usable only once durable: a token that a crash could lose
            // is never handed out.
            live.insert(record.token_hash, signed_in(&record));
            Ok((record, token))
        })
    }
}

impl Handler<Revoke> for OperatorActor {
    type Result = ResponseFuture<Result<OperatorRecord, OperatorError>>;

    fn handle(&mut self, Revoke { name }: Revoke, _: &mut Self::Context) -> Self::Result {
        let revoked = revoke_in(self.store.as_ref(), &name);
        if let Ok(record) = &revoked {
            // Refused from now on, even before the flush.
            self.live.remove(&record.token_hash);
        }
        let store = self.store.clone();
        Box::pin(async move {
            let record = revoked?;
            store.commit().await?;
            Ok(record)
        })
    }
}

impl Handler<List> for OperatorActor {
    type Result = Result<Vec<OperatorRecord>, OperatorError>;

    fn handle(&mut self, _: List, _: &mut Self::Context) -> Self::Result {
        Ok(self.store.all_operators()?)
    }
}

/// The façade's handle on operators.
#[derive(Clone)]
pub struct Operators {
    addr: Addr<OperatorActor>,
    live: Live,
}

impl Operators {
    /// Starts the supervised actor with the live tokens loaded.
    pub fn start(store: Arc<dyn OperatorRepo>) -> Result<Self, StorageError> {
        let live: Live = Arc::new(
            store
                .all_operators()?
                .iter()
                .filter(|o| o.revoked_at.is_none())
                .map(|o| (o.token_hash, signed_in(o)))
                .collect(),
        );
        let actor_live = live.clone();
        let addr = Supervisor::start(move |_| OperatorActor {
            store,
            live: actor_live,
        });
        Ok(Self { addr, live })
    }

    /// The operator a bearer token belongs to, if it is live.
    pub fn signed_in(&self, token: &str) -> Option<SignedIn> {
        if token.is_empty() || token.len() > 256 {
            return None;
        }
        self.live.get(&token_hash(token)).map(|s| s.clone())
    }

    /// Whether any named operator can sign in.
    pub fn any(&self) -> bool {
        !self.live.is_empty()
    }

    /// Adds an operator (durable before it answers).
    pub async fn add(
        &self,
        name: OperatorName,
        role: Role,
        campuses: Vec<String>,
    ) -> Result<(OperatorRecord, String), OperatorError> {
        self.addr
            .send(Add {
                name,
                role,
                campuses,
            })
            .await?
    }

    /// Revokes an operator's token.
    pub async fn revoke(&self, name: OperatorName) -> Result<OperatorRecord, OperatorError> {
        self.addr.send(Revoke { name }).await?
    }

    /// Every operator.
    pub async fn list(&self) -> Result<Vec<OperatorRecord>, OperatorError> {
        self.addr.send(List).await?
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }
}
