//! The token refresher actor: owns the app's access_token. Refreshes ahead
//! of expiry, single flight (any number of waiting callers, one WeChat
//! call), backs off exponentially with jitter when WeChat fails, and on a
//! 40001/42001/40014 answer replaces the token only if it is still the one
//! that failed, at most once per 30 s. Persisted, so a restart does not
//! refresh needlessly (which would invalidate other processes' tokens).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::Rng;
use tokio::sync::oneshot;

use crate::domain::{now_utc, StoredToken};
use crate::storage::TokenRepo;
use crate::wechat::{WeChat, WeChatError};

/// Refresh this long before expiry, so no call goes out with a token about
/// to lapse.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// First pause after a failed refresh; doubles per failure.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest pause between refresh attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// At most one refresh forced by an invalid-token answer per this long:
/// the daily token quota is small and a storm of 40001s must not eat it.
const FORCED_REFRESH_SPACING: Duration = Duration::from_secs(30);
/// How long a handle reuses the token it last had without asking the
/// actor: far inside the refresh margin, so a proactively replaced token
/// is never used past WeChat's overlap, and the hot request path (content
/// checks on every order) skips a mailbox round trip.
const HANDLE_REUSE: Duration = Duration::from_secs(30);

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// WeChat failed to give one.
    #[error("no access_token: WeChat failed")]
    WeChat(#[source] Arc<WeChatError>),
    /// WeChat failed a moment ago; the refresher is backing off.
    #[error("no access_token: WeChat failed; backing off")]
    BackingOff,
    /// WeChat gave one that expires within the refresh margin.
    #[error("no access_token: it lives shorter than the margin")]
    ShortLived,
    /// The refresher restarted or is gone.
    #[error("no access_token: the refresher is unavailable")]
    Unavailable,
}

type Waiter = oneshot::Sender<Result<String, TokenError>>;

/// The actor.
pub struct TokenRefresher {
    wechat: Arc<dyn WeChat>,
    store: Arc<dyn TokenRepo>,
    stable: bool,
    current: Option<StoredToken>,
    refreshing: bool,
    waiters: Vec<Waiter>,
    failures: u32,
    not_before: Option<Instant>,
    last_forced: Option<Instant>,
    proactive: Option<SpawnHandle>,
}

/// The current token (refreshed first when missing or about to expire).
#[derive(Message)]
#[rtype(result = "()")]
pub struct GetToken {
    reply: Waiter,
}

/// A call answered "invalid token" with `stale`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InvalidateToken {
    /// The token that failed.
    pub stale: String,
}

impl Actor for TokenRefresher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.current = self.store.get_access_token().ok().flatten();
        self.schedule_proactive(ctx);
    }
}

impl Supervised for TokenRefresher {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.refreshing = false;
        self.proactive = None;
        let waiters = std::mem::take(&mut self.waiters);
        for w in waiters {
            let _ = w.send(Err(TokenError::Unavailable));
        }
    }
}

impl TokenRefresher {
    fn usable(&self) -> Option<String> {
        let margin = TOKEN_REFRESH_MARGIN.as_secs() as i64;
        self.current
            .as_ref()
            .filter(|t| now_utc().unix_timestamp() < t.expires_at - margin)
            .map(|t| t.value.clone())
    }

    fn refresh(&mut self, ctx: &mut Context<Self>) {
        if self.refreshing {
            return;
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.refreshing = true;
        let (wechat, stable) = (self.wechat.clone(), self.stable);
        let fetch = async move { wechat.fetch_access_token(stable).await };
        ctx.spawn(
            fetch
                .into_actor(self)
                .map(|result, act, ctx| act.refreshed(result, ctx)),
        );
    }

    fn refreshed(
        &mut self,
        result: Result<crate::wechat::AccessToken, WeChatError>,
        ctx: &mut Context<Self>,
    ) {
        self.refreshing = false;
        match result {
            Ok(token) => {
                self.failures = 0;
                self.not_before = None;
                let stored = StoredToken {
                    value: token.value,
                    expires_at: now_utc().unix_timestamp() + token.expires_in as i64,
                };
                if let Err(e) = self.store.put_access_token(&stored) {
                    tracing::warn!(error = %e, "access_token not persisted");
                }
                self.current = Some(stored);
                metrics::counter!("lastmile_token_refreshes_total", "outcome" => "ok").increment(1);
                self.answer_all(self.usable().ok_or(TokenError::ShortLived));
                self.schedule_proactive(ctx);
            }
            Err(e) => {
                self.failures += 1;
                let pause = backoff(self.failures);
                self.not_before = Some(Instant::now() + pause);
                tracing::warn!(error = %e, retry_in = ?pause, "access_token refresh failed");
                metrics::counter!("lastmile_token_refreshes_total", "outcome" => "error")
                    .increment(1);
                self.answer_all(Err(TokenError::WeChat(Arc::new(e))));
                // Retry in the background once the pause is over.
                ctx.run_later(pause, |act, ctx| {
                    if act.usable().is_none() {
                        act.refresh(ctx);
                    }
                });
            }
        }
    }

    fn answer_all(&mut self, result: Result<String, TokenError>) {
        for waiter in std::mem::take(&mut self.waiters) {
            let _ = waiter.send(result.clone());
        }
    }

    fn schedule_proactive(&mut self, ctx: &mut Context<Self>) {
        let Some(token) = &self.current else { return };
        if let Some(handle) = self.proactive.take() {
            ctx.cancel_future(handle);
        }
        let margin = TOKEN_REFRESH_MARGIN.as_secs() as i64;
        let due_in = (token.expires_at - margin - now_utc().unix_timestamp()).max(0) as u64;
        self.proactive = Some(ctx.run_later(Duration::from_secs(due_in), |act, ctx| {
            act.proactive = None;
            act.refresh(ctx);
        }));
    }
}

fn backoff(failures: u32) -> Duration {
    let exp = BACKOFF_BASE
        .saturating_mul(1u32 << failures.min(16))
        .min(BACKOFF_CAP);
    // Full jitter between half and all of the pause spreads retries out.
    let factor = rand::thread_rng().gen_range(0.5..=1.0);
    exp.mul_f64(factor)
}

impl Handler<GetToken> for TokenRefresher {
    type Result = ();

    fn handle(&mut self, GetToken { reply }: GetToken, ctx: &mut Self::Context) {
        if let Some(token) = self.usable() {
            let _ = reply.send(Ok(token));
            return;
        }
        if !self.refreshing && self.not_before.is_some_and(|t| Instant::now() < t) {
            let _ = reply.send(Err(TokenError::BackingOff));
            return;
        }
        self.waiters.push(reply);
        self.refresh(ctx);
    }
}

impl Handler<InvalidateToken> for TokenRefresher {
    type Result = ();

    fn handle(&mut self, InvalidateToken { stale }: InvalidateToken, ctx: &mut Self::Context) {
        let is_current = self.current.as_ref().is_some_and(|t| t.value == stale);
        let spaced = self
            .last_forced
            .is_none_or(|t| t.elapsed() >= FORCED_REFRESH_SPACING);
        if !is_current || !spaced {
            return;
        }
        self.last_forced = Some(Instant::now());
        self.current = None;
        metrics::counter!("lastmile_token_invalidations_total").increment(1);
        self.refresh(ctx);
    }
}

/// The handle other actors use: the token by message only.
#[derive(Clone)]
pub struct Tokens {
    addr: Addr<TokenRefresher>,
    /// The token this handle (and its clones) last had, and when.
    recent: Arc<std::sync::Mutex<Option<(String, Instant)>>>,
}

crate::supervise::inject_panic!(TokenRefresher, "token_refresher", Tokens);

impl Tokens {
    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }

    /// Starts the supervised refresher (`stable`: use cgi-bin/stable_token).
    pub fn start(wechat: Arc<dyn WeChat>, store: Arc<dyn TokenRepo>, stable: bool) -> Self {
        let addr = Supervisor::start(move |_| TokenRefresher {
            wechat,
            store,
            stable,
            current: None,
            refreshing: false,
            waiters: Vec::new(),
            failures: 0,
            not_before: None,
            last_forced: None,
            proactive: None,
        });
        Self {
            addr,
            recent: Arc::default(),
        }
    }

    /// The current access_token.
    pub async fn get(&self) -> Result<String, TokenError> {
        let (tx, rx) = oneshot::channel();
        self.addr
            .send(GetToken { reply: tx })
            .await
            .map_err(|_| TokenError::Unavailable)?;
        rx.await.map_err(|_| TokenError::Unavailable)?
    }

    /// Reports that `stale` was refused by WeChat.
    pub async fn invalidate(&self, stale: String) {
        let _ = self.addr.send(InvalidateToken { stale }).await;
    }

    /// The token this handle had within [`HANDLE_REUSE`], else the current one.
    async fn reused(&self) -> Result<String, TokenError> {
        if let Ok(recent) = self.recent.lock() {
            if let Some((token, at)) = recent.as_ref() {
                if at.elapsed() < HANDLE_REUSE {
                    return Ok(token.clone());
                }
            }
        }
        let token = self.get().await?;
        if let Ok(mut recent) = self.recent.lock() {
            *recent = Some((token.clone(), Instant::now()));
        }
        Ok(token)
    }

    /// Calls `f` with the token; if WeChat says the token is invalid,
    /// refreshes (once, if still current) and retries exactly once.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, CallError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, WeChatError>>,
    {
        let token = self.reused().await?;
        match f(token.clone()).await {
            Err(e) if e.is_invalid_token() => {
                if let Ok(mut recent) = self.recent.lock() {
                    *recent = None;
                }
                self.invalidate(token).await;
                let fresh = self.reused().await?;
                Ok(f(fresh).await?)
            }
            other => Ok(other?),
        }
    }
}

/// A call made through [`Tokens::call`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// WeChat refused the call itself.
    #[error(transparent)]
    WeChat(#[from] WeChatError),
}
