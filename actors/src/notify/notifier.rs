//! The notifier: sends the messages the orders shards put in the outbox
//! (in the same write as the state change), oldest first — a subscribe
//! message when the user granted the template, else a template message
//! with a pooled form_id / prepay_id. Transient failures are retried with
//! backoff; permanent ones (no permission, 43101 refused, expired) are
//! dropped with the reason counted. At-least-once: an entry leaves the
//! outbox only after WeChat accepted it, and survives restarts.
//!
//! The same outbox carries the reports of delivered orders to WeChat's
//! shipping-info service (`wechat.shipping_info`): retried while WeChat is
//! busy or has not seen the payment yet, given up with an error log and
//! `lastmile_shipping_reports_total{outcome="given_up"}` (alert on it) when
//! refused for good; the order records when WeChat took it.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;

use crate::auth::token::{CallError, Tokens};
use crate::domain::{now_utc, MessageKind, OutboxEntry, TemplateId, Via};
use crate::notify::formid::FormIds;
use crate::orders::{OrderEvent, Orders};
use crate::storage::{OutboxRepo, StorageError};
use crate::wechat::{OutgoingMessage, ShippingOutcome, ShippingReport, WeChat};

/// How often the outbox is looked at even without a nudge (retries).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// First retry delay; doubles per attempt.
const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest retry delay.
const RETRY_CAP: Duration = Duration::from_secs(300);
/// Pause before trying an entry's next form_id after WeChat refused one.
const FORM_ID_RETRY: Duration = Duration::from_millis(500);
/// Attempts per message before it is given up (with the backoff above,
/// about an hour of trying; `messages.expire_after` bounds it too).
const MAX_ATTEMPTS: u32 = 20;
/// Sends in flight at once within a round.
const MAX_CONCURRENT_SENDS: usize = 16;

fn now_ms() -> i64 {
    crate::domain::unix_ms(now_utc())
}

/// The entries to try now: due ones, oldest first, at most one per
/// recipient; an entry waits while an earlier one for the same order waits
/// (messages about one order go out in order).
fn pick_due(entries: Vec<OutboxEntry>, now_ms: i64) -> Vec<OutboxEntry> {
    let mut blocked_orders = std::collections::HashSet::new();
    let mut served_users = std::collections::HashSet::new();
    let mut picked = Vec::new();
    for entry in entries {
        if blocked_orders.contains(&entry.order_id) {
            continue;
        }
        blocked_orders.insert(entry.order_id.clone());
        if entry.next_attempt_ms > now_ms || !served_users.insert(entry.to.clone()) {
            continue;
        }
        picked.push(entry);
    }
    picked
}

/// Template ids per message kind, and how long a message may wait.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Courier assigned.
    pub assigned: String,
    /// Goods picked up.
    pub picked_up: String,
    /// Delivered.
    pub delivered: String,
    /// Refunded.
    pub refunded: String,
    /// Nobody has taken the order yet.
    pub untaken: String,
    /// The merchant id shipping reports name the order by.
    pub mch_id: String,
    /// A message older than this is dropped.
    pub expire_after: Duration,
}

impl NotifierConfig {
    fn template(&self, kind: MessageKind) -> &str {
        match kind {
            MessageKind::Assigned => &self.assigned,
            MessageKind::PickedUp => &self.picked_up,
            MessageKind::Delivered => &self.delivered,
            MessageKind::Refunded => &self.refunded,
            MessageKind::Untaken => &self.untaken,
            MessageKind::ShippingInfo => "",
        }
    }
}

/// What one step of the worker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A message went out.
    Sent,
    /// A message was given up, with the reason.
    Dropped(&'static str),
    /// A send failed transiently; retried later.
    Retrying,
}

/// Everything the worker needs, cheap to clone into a future.
#[derive(Clone)]
struct Worker {
    store: Arc<dyn OutboxRepo>,
    wechat: Arc<dyn WeChat>,
    tokens: Tokens,
    formids: FormIds,
    orders: Orders,
    config: NotifierConfig,
}

/// What the shipping-info service is told was delivered.
const SHIPPING_ITEM: &str = "校园跑腿配送";

impl Worker {
    /// One fair round: every due entry, at most one per recipient (so one
    /// user's failing sends delay nobody else's by more than one send),
    /// sent concurrently. Returns what each did; empty when nothing is due.
    async fn try_execute_round(&self) -> Result<Vec<Outcome>, StorageError> {
        let now_ms = now_ms();
        let entries = self.store.outbox(usize::MAX)?;
        self.publish(&entries, now_ms);
        let picked = pick_due(entries, now_ms);
        let outcomes: Vec<Result<Outcome, StorageError>> = futures::stream::iter(picked)
            .map(|entry| self.execute(entry, now_ms))
            .buffer_unordered(MAX_CONCURRENT_SENDS)
            .collect()
            .await;
        outcomes.into_iter().collect()
    }

    /// One attempt at one entry.
    async fn execute(&self, mut entry: OutboxEntry, now_ms: i64) -> Result<Outcome, StorageError> {
        if now_ms - entry.created_at_ms > self.config.expire_after.as_millis() as i64 {
            return self.drop_entry(&entry, "expired").await;
        }
        if entry.attempts >= MAX_ATTEMPTS {
            if entry.kind == MessageKind::ShippingInfo {
                return self.give_up_shipping(&entry, "too many attempts").await;
            }
            return self.drop_entry(&entry, "too_many_attempts").await;
        }
        if entry.kind == MessageKind::ShippingInfo {
            return self.report_shipping(entry, now_ms).await;
        }
        let template = self.config.template(entry.kind).to_owned();
        if entry.via.is_none() {
            entry.via = self.permission(&entry, &template).await;
            match &entry.via {
                None => return self.drop_entry(&entry, "no_permission").await,
                Some(_) => {
                    // The grant or form_id is spent: record it before sending,
                    // so a crash cannot make the retry spend another.
                    self.store.put_outbox(&entry)?;
                    self.store.commit().await?;
                }
            }
        }
        let message = OutgoingMessage {
            touser: entry.to.to_string(),
            template_id: template,
            page: format!("pages/order/detail?id={}", entry.order_id),
            order_id: entry.order_id.to_string(),
            update: phrase(entry.kind).to_owned(),
        };
        let via = entry.via.clone();
        let sent = self
            .tokens
            .call(|token| {
                let (wechat, message, via) = (self.wechat.clone(), message.clone(), via.clone());
                async move {
                    match via {
                        Some(Via::Template(form_id)) => {
                            wechat.send_template(&token, &message, &form_id).await
                        }
                        _ => wechat.send_subscribe(&token, &message).await,
                    }
                }
            })
            .await;
        match sent {
            Ok(()) => {
                self.store.remove_outbox(entry.id)?;
                self.store.commit().await?;
                let label = if matches!(entry.via, Some(Via::Template(_))) {
                    "template"
                } else {
                    "subscribe"
                };
                metrics::counter!("lastmile_messages_sent_total", "via" => label).increment(1);
                Ok(Outcome::Sent)
            }
            Err(CallError::WeChat(e)) if e.is_refused_by_user() => {
                self.drop_entry(&entry, "refused").await
            }
            Err(CallError::WeChat(e)) if e.is_form_id_spent() => {
                // That form_id is spent: the next one is tried after a short
                // pause, in a later round, like any other retry.
                entry.via = None;
                self.retry_later(entry, now_ms, FORM_ID_RETRY).await
            }
            Err(e) => {
                let delay = RETRY_BASE
                    .saturating_mul(1 << entry.attempts.min(16))
                    .min(RETRY_CAP);
                tracing::warn!(entry = entry.id, attempts = entry.attempts + 1, error = %e, "message not sent; retrying");
                self.retry_later(entry, now_ms, delay).await
            }
        }
    }

    /// Reports a delivered order to WeChat's shipping-info service.
    async fn report_shipping(
        &self,
        entry: OutboxEntry,
        now_ms: i64,
    ) -> Result<Outcome, StorageError> {
        let report = ShippingReport::delivered(
            &self.config.mch_id,
            entry.order_id.as_str(),
            entry.to.as_str(),
            SHIPPING_ITEM,
            now_utc(),
        );
        let answer = self
            .tokens
            .call(|token| {
                let (wechat, report) = (self.wechat.clone(), report.clone());
                async move { wechat.upload_shipping_info(&token, &report).await }
            })
            .await;
        let outcome = match &answer {
            Ok(()) => ShippingOutcome::Done,
            Err(CallError::WeChat(e)) => ShippingOutcome::of_error(e),
            // No access_token: WeChat is out of reach for now.
            Err(CallError::Token(_)) => ShippingOutcome::Retry,
        };
        match outcome {
            ShippingOutcome::Done => {
                if let Err(e) = self
                    .orders
                    .shipping_reported(entry.order_id.clone(), now_utc())
                    .await
                {
                    // WeChat has it; only the mark is missing: ask again later
                    // (a repeat answers 10060002, taken as done).
                    tracing::warn!(order = %entry.order_id, error = %e, "shipping report not recorded");
                    return self.retry_later(entry, now_ms, RETRY_BASE).await;
                }
                self.store.remove_outbox(entry.id)?;
                self.store.commit().await?;
                metrics::counter!("lastmile_shipping_reports_total", "outcome" => "reported")
                    .increment(1);
                Ok(Outcome::Sent)
            }
            ShippingOutcome::Retry => {
                let delay = RETRY_BASE
                    .saturating_mul(1 << entry.attempts.min(16))
                    .min(RETRY_CAP);
                if let Err(e) = &answer {
                    tracing::warn!(order = %entry.order_id, attempts = entry.attempts + 1, error = %e, "shipping report not taken; retrying");
                }
                self.retry_later(entry, now_ms, delay).await
            }
            ShippingOutcome::GiveUp => {
                let why = answer.err().map_or_else(String::new, |e| e.to_string());
                self.give_up_shipping(&entry, &why).await
            }
        }
    }

    /// A shipping report WeChat will never take: an operator must enter it
    /// by hand in the mini-program's 发货信息管理 page.
    async fn give_up_shipping(
        &self,
        entry: &OutboxEntry,
        why: &str,
    ) -> Result<Outcome, StorageError> {
        tracing::error!(order = %entry.order_id, reason = why, "shipping report given up; enter it by hand in 发货信息管理");
        self.store.remove_outbox(entry.id)?;
        self.store.commit().await?;
        metrics::counter!("lastmile_shipping_reports_total", "outcome" => "given_up").increment(1);
        Ok(Outcome::Dropped("shipping_refused"))
    }

    async fn retry_later(
        &self,
        mut entry: OutboxEntry,
        now_ms: i64,
        delay: Duration,
    ) -> Result<Outcome, StorageError> {
        entry.attempts += 1;
        entry.next_attempt_ms = now_ms + delay.as_millis() as i64;
        self.store.put_outbox(&entry)?;
        self.store.commit().await?;
        Ok(Outcome::Retrying)
    }

    /// Makes every waiting entry due now.
    fn due_now(&self) -> Result<(), StorageError> {
        let now_ms = now_ms();
        for mut entry in self.store.outbox(usize::MAX)? {
            if entry.next_attempt_ms > now_ms {
                entry.next_attempt_ms = now_ms;
                self.store.put_outbox(&entry)?;
            }
        }
        Ok(())
    }

    /// A grant for the template, else a pooled form_id.
    async fn permission(&self, entry: &OutboxEntry, template: &str) -> Option<Via> {
        if let Ok(t) = TemplateId::parse(template, "template") {
            if self
                .formids
                .take_grant(entry.to.clone(), t)
                .await
                .unwrap_or(false)
            {
                return Some(Via::Subscribe);
            }
        }
        match self.formids.take_form_id(entry.to.clone(), now_utc()).await {
            Ok(Some(form_id)) => Some(Via::Template(form_id)),
            _ => None,
        }
    }

    async fn drop_entry(
        &self,
        entry: &OutboxEntry,
        reason: &'static str,
    ) -> Result<Outcome, StorageError> {
        tracing::info!(entry = entry.id, order = %entry.order_id, reason, "message dropped");
        self.store.remove_outbox(entry.id)?;
        self.store.commit().await?;
        metrics::counter!("lastmile_messages_dropped_total", "reason" => reason).increment(1);
        Ok(Outcome::Dropped(reason))
    }

    fn publish(&self, entries: &[OutboxEntry], now_ms: i64) {
        metrics::gauge!("lastmile_outbox_depth").set(self.store.outbox_len() as f64);
        let oldest = entries.first().map_or(0, |e| now_ms - e.created_at_ms);
        metrics::gauge!("lastmile_outbox_oldest_seconds").set(oldest as f64 / 1000.0);
    }
}

fn phrase(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Assigned => "已接单",
        MessageKind::PickedUp => "已取件",
        MessageKind::Delivered => "已送达",
        MessageKind::Refunded => "已退款",
        MessageKind::Untaken => "暂无人接单",
        MessageKind::ShippingInfo => "",
    }
}

/// The notifier actor: runs the worker until the outbox has nothing due.
pub struct Notifier {
    worker: Worker,
    running: bool,
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Resumes whatever a restart left in the outbox, at once: the
        // backoff belonged to the failures of the previous process.
        if let Err(e) = self.worker.due_now() {
            tracing::warn!(error = %e, "outbox not rescheduled");
        }
        self.drain(ctx);
        ctx.run_interval(SWEEP_EVERY, |act, ctx| act.drain(ctx));
    }
}

impl Supervised for Notifier {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.running = false;
    }
}

impl Notifier {
    fn drain(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let worker = self.worker.clone();
        let work = async move {
            loop {
                match worker.try_execute_round().await {
                    Ok(outcomes) if outcomes.is_empty() => break,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::error!(error = %e, "outbox unreadable");
                        break;
                    }
                }
            }
        };
        ctx.spawn(work.into_actor(self).map(|_, act, _| act.running = false));
    }
}

impl Handler<OrderEvent> for Notifier {
    type Result = ();

    fn handle(&mut self, event: OrderEvent, ctx: &mut Self::Context) {
        if let OrderEvent::OutboxWritten = event {
            self.drain(ctx);
        }
    }
}

/// The handle.
#[derive(Clone)]
pub struct Notifications {
    addr: Addr<Notifier>,
}

crate::supervise::inject_panic!(Notifier, "notifier", Notifications);

impl Notifications {
    /// Starts the supervised notifier; hand [`Notifications::listener`] to
    /// the orders shards.
    pub fn start(
        store: Arc<dyn OutboxRepo>,
        wechat: Arc<dyn WeChat>,
        tokens: Tokens,
        formids: FormIds,
        orders: Orders,
        config: NotifierConfig,
    ) -> Self {
        let worker = Worker {
            store,
            wechat,
            tokens,
            formids,
            orders,
            config,
        };
        let addr = Supervisor::start(move |_| Notifier {
            worker,
            running: false,
        });
        Self { addr }
    }

    /// Where the orders shards send their events.
    pub fn listener(&self) -> Recipient<OrderEvent> {
        self.addr.clone().recipient()
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }
}
