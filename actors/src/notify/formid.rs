//! The form-id pool actor: per-user form_ids (7 days, one message each),
//! paid orders' prepay_ids (7 days from payment, three messages) and
//! subscribe-message grants (one message per grant). Owns the `formids`
//! and `grants` trees; every change is durable before it is answered.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use time::OffsetDateTime;

use crate::domain::{FormId, OpenId, PooledId, TemplateId, MOCK_FORM_ID};
use crate::storage::{FormIdRepo, StorageError};

/// WeChat accepts a form_id or prepay_id for 7 days; stop using one an hour
/// early so a message queued at the edge is not refused.
const POOL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600 - 3600);
/// Messages a paid order's prepay_id may carry.
const PREPAY_USES: u8 = 3;
/// Ids pooled per user at most: a message needs one, and a user who sends
/// thousands only makes the pool grow. The newest are kept.
pub const MAX_POOLED_PER_USER: usize = 200;
/// How often expired ids are swept out (not only when one is taken).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Pool form_ids received at `received_at`; answers how many were kept.
#[derive(Message)]
#[rtype(result = "Result<usize, StorageError>")]
pub struct AddFormIds {
    /// Whose.
    pub openid: OpenId,
    /// The ids (the devtools' mock placeholder is dropped here).
    pub form_ids: Vec<FormId>,
    /// When they arrived.
    pub received_at: OffsetDateTime,
}

/// Pool a paid order's prepay_id (never before payment).
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct AddPrepay {
    /// The payer.
    pub openid: OpenId,
    /// The prepay_id.
    pub prepay_id: String,
    /// When the payment was confirmed.
    pub paid_at: OffsetDateTime,
}

/// Record what `wx.requestSubscribeMessage` granted.
#[derive(Message)]
#[rtype(result = "Result<usize, StorageError>")]
pub struct GrantTemplates {
    /// Whose.
    pub openid: OpenId,
    /// One grant each.
    pub template_ids: Vec<TemplateId>,
}

/// Take one use of the user's earliest-expiring valid id.
#[derive(Message)]
#[rtype(result = "Result<Option<String>, StorageError>")]
pub struct TakeFormId {
    /// Whose.
    pub openid: OpenId,
    /// Now, for expiry.
    pub now: OffsetDateTime,
}

/// Take one grant of a template, if the user has one.
#[derive(Message)]
#[rtype(result = "Result<bool, StorageError>")]
pub struct TakeGrant {
    /// Whose.
    pub openid: OpenId,
    /// Which template.
    pub template_id: TemplateId,
}

/// The pool actor.
pub struct FormIdPool {
    store: Arc<dyn FormIdRepo>,
    /// The templates the service sends: grants of others are not kept.
    templates: Vec<String>,
}

impl Actor for FormIdPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(PRUNE_EVERY, |act, _| act.prune());
    }
}

impl FormIdPool {
    /// Sweeps expired ids off the actor's thread (it scans the whole tree).
    fn prune(&self) {
        let store = self.store.clone();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        actix::spawn(async move {
            match tokio::task::spawn_blocking(move || store.prune_expired_ids(now)).await {
                Ok(Ok(n)) if n > 0 => tracing::info!(pruned = n, "expired form_ids swept"),
                Ok(Err(e)) => tracing::warn!(error = %e, "form_id sweep failed"),
                _ => {}
            }
        });
    }
}

impl Supervised for FormIdPool {}

fn expiry(from: OffsetDateTime) -> i64 {
    (from + POOL_LIFETIME).unix_timestamp()
}

impl Handler<AddFormIds> for FormIdPool {
    type Result = Result<usize, StorageError>;

    fn handle(&mut self, msg: AddFormIds, _: &mut Self::Context) -> Self::Result {
        let mut kept = Vec::<&str>::new();
        for id in &msg.form_ids {
            if id.as_str() != MOCK_FORM_ID && !kept.contains(&id.as_str()) {
                kept.push(id.as_str());
            }
        }
        let expires = expiry(msg.received_at);
        for value in &kept {
            let entry = PooledId {
                value: (*value).to_owned(),
                uses_left: 1,
            };
            self.store
                .pool_id(&msg.openid, expires, &entry, MAX_POOLED_PER_USER)?;
        }
        metrics::counter!("lastmile_form_ids_pooled_total", "kind" => "form_id")
            .increment(kept.len() as u64);
        Ok(kept.len())
    }
}

impl Handler<AddPrepay> for FormIdPool {
    type Result = Result<(), StorageError>;

    fn handle(&mut self, msg: AddPrepay, _: &mut Self::Context) -> Self::Result {
        let entry = PooledId {
            value: msg.prepay_id,
            uses_left: PREPAY_USES,
        };
        self.store.pool_id(
            &msg.openid,
            expiry(msg.paid_at),
            &entry,
            MAX_POOLED_PER_USER,
        )?;
        metrics::counter!("lastmile_form_ids_pooled_total", "kind" => "prepay_id").increment(1);
        Ok(())
    }
}

impl Handler<GrantTemplates> for FormIdPool {
    type Result = Result<usize, StorageError>;

    fn handle(&mut self, msg: GrantTemplates, _: &mut Self::Context) -> Self::Result {
        let mut granted = 0;
        for template in &msg.template_ids {
            if self.templates.iter().any(|t| t == template.as_str()) {
                self.store.add_grants(&msg.openid, template.as_str(), 1)?;
                granted += 1;
            }
        }
        Ok(granted)
    }
}

impl Handler<TakeFormId> for FormIdPool {
    type Result = Result<Option<String>, StorageError>;

    fn handle(&mut self, msg: TakeFormId, _: &mut Self::Context) -> Self::Result {
        self.store
            .take_pooled_id(&msg.openid, msg.now.unix_timestamp())
    }
}

impl Handler<TakeGrant> for FormIdPool {
    type Result = Result<bool, StorageError>;

    fn handle(&mut self, msg: TakeGrant, _: &mut Self::Context) -> Self::Result {
        self.store.take_grant(&msg.openid, msg.template_id.as_str())
    }
}

/// Why a pool call failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// sled failed.
    #[error("storage is unavailable")]
    Storage(#[from] StorageError),
    /// The actor is restarting or gone.
    #[error("the form-id pool is unavailable")]
    Mailbox(#[from] MailboxError),
}

/// The handle on the pool.
#[derive(Clone)]
pub struct FormIds {
    addr: Addr<FormIdPool>,
    store: Arc<dyn FormIdRepo>,
}

crate::supervise::inject_panic!(FormIdPool, "formids", FormIds);

impl FormIds {
    /// Starts the supervised pool actor; grants count only for `templates`
    /// (the ones the service is configured to send).
    pub fn start(store: Arc<dyn FormIdRepo>, templates: Vec<String>) -> Self {
        let actor_store = store.clone();
        let addr = Supervisor::start(move |_| FormIdPool {
            store: actor_store,
            templates,
        });
        Self { addr, store }
    }

    async fn durable<T>(&self, value: T) -> Result<T, PoolError> {
        self.store.commit().await?;
        Ok(value)
    }

    /// Pools form_ids; answers how many were kept (the mock one is not).
    pub async fn add_form_ids(
        &self,
        openid: OpenId,
        form_ids: Vec<FormId>,
        received_at: OffsetDateTime,
    ) -> Result<usize, PoolError> {
        let n = self
            .addr
            .send(AddFormIds {
                openid,
                form_ids,
                received_at,
            })
            .await??;
        self.durable(n).await
    }

    /// Pools a paid order's prepay_id for three messages.
    pub async fn add_prepay(
        &self,
        openid: OpenId,
        prepay_id: String,
        paid_at: OffsetDateTime,
    ) -> Result<(), PoolError> {
        self.addr
            .send(AddPrepay {
                openid,
                prepay_id,
                paid_at,
            })
            .await??;
        self.durable(()).await
    }

    /// Records subscribe-message grants; answers how many.
    pub async fn grant(
        &self,
        openid: OpenId,
        template_ids: Vec<TemplateId>,
    ) -> Result<usize, PoolError> {
        let n = self
            .addr
            .send(GrantTemplates {
                openid,
                template_ids,
            })
            .await??;
        self.durable(n).await
    }

    /// Takes one use of the earliest-expiring valid id.
    pub async fn take_form_id(
        &self,
        openid: OpenId,
        now: OffsetDateTime,
    ) -> Result<Option<String>, PoolError> {
        let id = self.addr.send(TakeFormId { openid, now }).await??;
        self.durable(id).await
    }

    /// Takes one grant of a template.
    pub async fn take_grant(
        &self,
        openid: OpenId,
        template_id: TemplateId,
    ) -> Result<bool, PoolError> {
        let ok = self
            .addr
            .send(TakeGrant {
                openid,
                template_id,
            })
            .await??;
        self.durable(ok).await
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }
}
