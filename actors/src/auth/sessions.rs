//! The sessions actor: login through jscode2session and opaque bearer tokens.
//!
//! The actor is the only writer of sessions (sled tree and cache). Token
//! look-ups read a shared read-mostly cache first and ask the actor only on
//! a miss, so authenticating a request costs no mailbox round trip.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{now_utc, Block, LoginCode, OpenId, Session};
use crate::storage::{SessionRepo, StorageError};
use crate::wechat::{WeChat, WeChatError, WxSession};

/// How long a login token works, in seconds (the `expires_in` clients get).
pub const SESSION_TTL_SECS: u64 = 7200;
/// How often expired sessions are swept from sled and the cache.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Why a login or a token check failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// WeChat rejected the login code.
    #[error("the login code was rejected by WeChat")]
    CodeRejected,
    /// No token, or an unknown or expired one.
    #[error("missing, unknown or expired token")]
    Unauthorized,
    /// WeChat could not be reached or failed.
    #[error("WeChat is unavailable")]
    WeChat(#[source] WeChatError),
    /// sled failed.
    #[error("storage is unavailable")]
    Storage(#[from] StorageError),
    /// The actor is restarting or gone.
    #[error("the sessions actor is unavailable")]
    Mailbox(#[from] MailboxError),
}

impl From<WeChatError> for AuthError {
    fn from(e: WeChatError) -> Self {
        match e {
            WeChatError::InvalidCode(_) => AuthError::CodeRejected,
            other => AuthError::WeChat(other),
        }
    }
}

/// What a successful login hands the client.
#[derive(Debug, Clone)]
pub struct LoginGrant {
    /// The bearer token.
    pub token: String,
    /// The user's openid.
    pub openid: OpenId,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

type Cache = Arc<DashMap<[u8; 32], Session>>;
/// Blocked users, read on every new order (written only by the actor).
type Blocks = Arc<DashMap<OpenId, Block>>;

/// The actor that owns sessions and blocks.
pub struct SessionActor {
    store: Arc<dyn SessionRepo>,
    wechat: Arc<dyn WeChat>,
    cache: Cache,
    blocks: Blocks,
}

/// An operator blocks a user (Some) or lifts the block (None); the answer
/// says whether anything changed.
#[derive(Message)]
#[rtype(result = "Result<bool, AuthError>")]
pub struct SetBlock {
    /// Who.
    pub openid: OpenId,
    /// The block, or None to lift it.
    pub block: Option<Block>,
}

/// Log a user in with a `wx.login` code.
#[derive(Message)]
#[rtype(result = "Result<LoginGrant, AuthError>")]
pub struct Login {
    /// The code from `wx.login`.
    pub code: LoginCode,
}

/// Resolve a token the cache did not know.
#[derive(Message)]
#[rtype(result = "Result<OpenId, AuthError>")]
pub struct Authenticate {
    /// sha256 of the bearer token.
    pub token_hash: [u8; 32],
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(SWEEP_EVERY, |act, _| act.sweep());
    }
}

impl Supervised for SessionActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("sessions actor restarting");
        self.cache.clear();
    }
}

impl SessionActor {
    fn open_session(&mut self, wx: WxSession) -> Result<LoginGrant, AuthError> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let session = Session {
            openid: wx.openid.clone(),
            expires_at: now_utc() + Duration::from_secs(SESSION_TTL_SECS),
        };
        let key = token_hash(&token);
        self.store.put_session(&key, &session)?;
        self.cache.insert(key, session);
        Ok(LoginGrant {
            token,
            openid: wx.openid,
            expires_in: SESSION_TTL_SECS,
        })
    }

    fn lookup(&mut self, key: [u8; 32]) -> Result<OpenId, AuthError> {
        let session = self
            .store
            .get_session(&key)?
            .ok_or(AuthError::Unauthorized)?;
        if session.expires_at <= now_utc() {
            return Err(AuthError::Unauthorized);
        }
        let openid = session.openid.clone();
        self.cache.insert(key, session);
        Ok(openid)
    }

    /// Forgets expired sessions: the cache here, the tree off the actor's
    /// thread (it is a scan).
    fn sweep(&mut self) {
        let now = now_utc();
        self.cache.retain(|_, s| s.expires_at > now);
        let store = self.store.clone();
        actix::spawn(async move {
            match tokio::task::spawn_blocking(move || store.remove_expired_sessions(now)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "sweeping expired sessions failed"),
                Err(e) => tracing::warn!(error = %e, "session sweep did not run"),
            }
        });
    }
}

impl Handler<Login> for SessionActor {
    type Result = ResponseActFuture<Self, Result<LoginGrant, AuthError>>;

    #[tracing::instrument(name = "login", skip_all)]
    fn handle(&mut self, Login { code }: Login, _: &mut Self::Context) -> Self::Result {
        let wechat = self.wechat.clone();
        let exchange = async move { wechat.code2session(code.as_str()).await };
        Box::pin(exchange.into_actor(self).then(|reply, act, _| {
            let opened = reply
                .map_err(AuthError::from)
                .and_then(|wx| act.open_session(wx));
            let store = act.store.clone();
            async move {
                let grant = opened?;
                store.commit().await?;
                Ok(grant)
            }
            .into_actor(act)
        }))
    }
}

impl Handler<SetBlock> for SessionActor {
    type Result = ResponseFuture<Result<bool, AuthError>>;

    fn handle(
        &mut self,
        SetBlock { openid, block }: SetBlock,
        _: &mut Self::Context,
    ) -> Self::Result {
        let written = match &block {
            Some(b) => self.store.put_block(&openid, b).map(|()| true),
            None => self.store.remove_block(&openid),
        };
        let changed = match (written, block) {
            (Err(e), _) => return Box::pin(async move { Err(AuthError::Storage(e)) }),
            (Ok(_), Some(b)) => {
                self.blocks.insert(openid, b);
                true
            }
            (Ok(removed), None) => {
                self.blocks.remove(&openid);
                removed
            }
        };
        let store = self.store.clone();
        Box::pin(async move {
            store.commit().await?;
            Ok(changed)
        })
    }
}

impl Handler<Authenticate> for SessionActor {
    type Result = Result<OpenId, AuthError>;

    fn handle(
        &mut self,
        Authenticate { token_hash }: Authenticate,
        _: &mut Self::Context,
    ) -> Self::Result {
        self.lookup(token_hash)
    }
}

/// The façade's handle on sessions: login, and token checks through the cache.
#[derive(Clone)]
pub struct Sessions {
    addr: Addr<SessionActor>,
    cache: Cache,
    blocks: Blocks,
}

crate::supervise::inject_panic!(SessionActor, "sessions", Sessions);

impl Sessions {
    /// Starts the supervised sessions actor on the current arbiter.
    pub fn start(
        store: Arc<dyn SessionRepo>,
        wechat: Arc<dyn WeChat>,
    ) -> Result<Self, StorageError> {
        let cache: Cache = Arc::new(DashMap::new());
        let blocks: Blocks = Arc::new(store.all_blocks()?.into_iter().collect());
        let (actor_cache, actor_blocks) = (cache.clone(), blocks.clone());
        let addr = Supervisor::start(move |_| SessionActor {
            store,
            wechat,
            cache: actor_cache,
            blocks: actor_blocks,
        });
        Ok(Self {
            addr,
            cache,
            blocks,
        })
    }

    /// Why a user is blocked from ordering, if they are.
    pub fn blocked(&self, openid: &OpenId) -> Option<String> {
        self.blocks.get(openid).map(|b| b.reason.clone())
    }

    /// Blocks a user (durable before it answers); true when it changed something.
    pub async fn block(&self, openid: OpenId, reason: String) -> Result<bool, AuthError> {
        let block = Block {
            reason,
            at: now_utc(),
        };
        self.addr
            .send(SetBlock {
                openid,
                block: Some(block),
            })
            .await?
    }

    /// Lifts a block; false when there was none.
    pub async fn unblock(&self, openid: OpenId) -> Result<bool, AuthError> {
        self.addr
            .send(SetBlock {
                openid,
                block: None,
            })
            .await?
    }

    /// Logs in with a `wx.login` code; durable before it answers.
    pub async fn login(&self, code: LoginCode) -> Result<LoginGrant, AuthError> {
        self.addr.send(Login { code }).await?
    }

    /// The openid behind a bearer token.
    pub async fn authenticate(&self, token: &str) -> Result<OpenId, AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::Unauthorized);
        }
        let key = token_hash(token);
        if let Some(s) = self.cache.get(&key) {
            return if s.expires_at > now_utc() {
                Ok(s.openid.clone())
            } else {
                Err(AuthError::Unauthorized)
            };
        }
        self.addr.send(Authenticate { token_hash: key }).await?
    }

    /// True while the actor is running.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }
}

/// Tokens are stored hashed, so a copy of the database grants no logins.
fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}
