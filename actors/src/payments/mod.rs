//! The payments actor: one WeChat Pay session per order — prepay, notify,
//! query and close on timeout, refund and refund notify.
//!
//! It owns the `payments` tree; it learns about orders only from their
//! shards (their events, and `Peek` for one order), and order state changes
//! go to the shards by message (`ConfirmPayment`, `CancelUnpaid`,
//! `ConfirmRefund`), each durable before the notify is answered SUCCESS.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::domain::{now_utc, OpenId, Order, OrderId, PayParams, PaymentRecord, Status};
use crate::notify::formid::FormIds;
use crate::orders::{OrderError, OrderEvent, Orders, PaymentDue, PaymentOutcome, RefundDue};
use crate::storage::{PaymentRepo, StorageError};
use crate::wechat::notify::{excerpt, PaidNotice, RefundNotice};
use crate::wechat::pay::NotifyAck;
use crate::wechat::{
    CloseOutcome, RefundRequest, RefundState, TradeState, UnifiedOrder, WeChat, WeChatError,
};

/// A prepay id is valid for 2 hours; replay it for a bit less.
const PREPAY_REUSE: Duration = Duration::from_secs(2 * 3600 - 300);
/// First pause before asking WeChat Pay again after a failed refund call;
/// it doubles per failure up to [`REFUND_RETRY_CAP`].
const REFUND_RETRY: Duration = Duration::from_secs(1);
/// Longest pause between refund attempts.
const REFUND_RETRY_CAP: Duration = Duration::from_secs(60);
/// When no refund notify came, ask refundquery after this long.
const REFUND_CHECK_AFTER: Duration = Duration::from_secs(30);
/// Path of the pay notify, appended to `wechat.notify_base`.
pub const PAY_NOTIFY_PATH: &str = "/api/v1/wechat/pay/notify";
/// Path of the refund notify, appended to `wechat.notify_base`.
pub const REFUND_NOTIFY_PATH: &str = "/api/v1/wechat/refund/notify";

/// Why a payment call failed, as the façade maps it. Clone (prepays are
/// shared by concurrent callers), so causes are kept behind `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PaymentError {
    /// No such order for this caller.
    #[error("order not found")]
    NotFound,
    /// The caller sees the order but may not pay it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The order cannot be paid in its status.
    #[error("{0}")]
    Conflict(String),
    /// WeChat Pay failed or refused.
    #[error("WeChat Pay call failed")]
    WeChat(#[source] Arc<WeChatError>),
    /// Storage failed.
    #[error("payments storage failed")]
    Storage(#[source] Arc<StorageError>),
    /// The orders shard failed.
    #[error("the orders shard failed")]
    Orders(#[source] Arc<OrderError>),
    /// An actor is restarting or gone.
    #[error("the payments actor is unavailable")]
    Mailbox(#[source] MailboxError),
    /// WeChat Pay's answers contradict each other or the order (an
    /// operator looks; nothing changes meanwhile).
    #[error("WeChat Pay's answers do not add up: {0}")]
    Inconsistent(String),
}

impl From<StorageError> for PaymentError {
    fn from(e: StorageError) -> Self {
        PaymentError::Storage(Arc::new(e))
    }
}

impl From<WeChatError> for PaymentError {
    fn from(e: WeChatError) -> Self {
        PaymentError::WeChat(Arc::new(e))
    }
}

impl From<OrderError> for PaymentError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => PaymentError::NotFound,
            OrderError::Transition(t) => PaymentError::Conflict(t.to_string()),
            OrderError::Forbidden(m) => PaymentError::Forbidden(m),
            other => PaymentError::Orders(Arc::new(other)),
        }
    }
}

impl From<MailboxError> for PaymentError {
    fn from(e: MailboxError) -> Self {
        PaymentError::Mailbox(e)
    }
}

/// Why a verified notify was not taken: WeChat is answered FAIL and sends
/// it again later.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Its `out_trade_no` is no order of ours.
    #[error("unknown out_trade_no")]
    UnknownOrder,
    /// Its `total_fee` is not the order's fee.
    #[error("total_fee mismatch")]
    FeeMismatch,
    /// Recording it or changing the order failed.
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

impl From<OrderError> for NotifyError {
    fn from(e: OrderError) -> Self {
        NotifyError::Payment(e.into())
    }
}

impl From<StorageError> for NotifyError {
    fn from(e: StorageError) -> Self {
        NotifyError::Payment(e.into())
    }
}

impl From<MailboxError> for NotifyError {
    fn from(e: MailboxError) -> Self {
        NotifyError::Payment(e.into())
    }
}

/// The acknowledgement for a notify that was (or was not) taken; a
/// failure is logged with its whole cause chain.
fn acknowledge(result: Result<(), NotifyError>) -> NotifyAck {
    match result {
        Ok(()) => NotifyAck::Success,
        Err(e) => {
            tracing::warn!(error = %crate::errors::chain(&e), "notify not taken; WeChat will send it again");
            NotifyAck::Fail(excerpt(&e.to_string()))
        }
    }
}

/// The actor that owns payment sessions.
pub struct PaymentsActor {
    store: PaymentRepo,
    orders: Orders,
    formids: FormIds,
    wechat: Arc<dyn WeChat>,
    notify_base: String,
    /// Prepays under way, so concurrent `pay` calls make one unifiedorder.
    pending: crate::flight::Flights<OrderId, Result<PayParams, PaymentError>>,
    /// Refunds being pushed through, so a repeated `RefundDue` starts none twice.
    refunding: std::collections::HashSet<OrderId>,
}

/// A refund attempt sequence ended (started and checked, or not needed).
#[derive(Message)]
#[rtype(result = "()")]
struct RefundSettled {
    id: OrderId,
}

/// Get (or make) the `wx.requestPayment` parameters for an order.
#[derive(Message)]
#[rtype(result = "Result<PayParams, PaymentError>")]
pub struct Prepay {
    /// The order.
    pub id: OrderId,
    /// Who asks (must be the customer).
    pub payer: OpenId,
}

/// unifiedorder answered (or failed) for a pending prepay.
#[derive(Message)]
#[rtype(result = "Result<PayParams, PaymentError>")]
struct PrepayFinished {
    id: OrderId,
    result: Result<(String, PayParams), PaymentError>,
}

/// A verified pay notify (parsed and checked on the HTTP worker).
#[derive(Message)]
#[rtype(result = "Result<(), NotifyError>")]
pub struct PayNotify {
    /// What it says.
    pub notice: PaidNotice,
}

/// A decrypted refund notify (parsed on the HTTP worker).
#[derive(Message)]
#[rtype(result = "Result<(), NotifyError>")]
pub struct RefundNotify {
    /// What it says.
    pub notice: RefundNotice,
}

/// What a transaction id reported by WeChat Pay means for a payment session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TransactionCheck {
    /// The first one: recorded.
    New,
    /// The one already recorded (a repeat).
    Same,
    /// Another one than recorded: the first is kept.
    Conflicting(String),
}

/// A second transaction id for a paid order: the first is kept.
fn transaction_conflict(order: &OrderId, kept: &str, ignored: &str) {
    let detail = format!("kept {}, ignored {}", excerpt(kept), excerpt(ignored));
    anomaly("transaction_id_mismatch", order, &detail);
}

/// Counts and logs a payment that does not add up (never silently).
fn anomaly(kind: &'static str, order: &OrderId, detail: &str) {
    tracing::error!(%order, kind, detail, "payment anomaly: nothing changed");
    metrics::counter!("lastmile_payment_anomalies_total", "kind" => kind).increment(1);
}

/// Record WeChat's transaction id for an order (unless another is recorded).
#[derive(Message)]
#[rtype(result = "Result<TransactionCheck, PaymentError>")]
struct RecordTransaction {
    id: OrderId,
    transaction_id: String,
}

/// Record that a refund was requested under `out_refund_no`.
#[derive(Message)]
#[rtype(result = "Result<String, PaymentError>")]
struct RecordRefund {
    id: OrderId,
}

impl Actor for PaymentsActor {
    type Context = Context<Self>;
}

impl Supervised for PaymentsActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("payments actor restarting");
        self.pending.clear();
        self.refunding.clear();
    }
}

impl PaymentsActor {
    fn notify_url(&self, path: &str) -> String {
        format!("{}{}", self.notify_base.trim_end_matches('/'), path)
    }

    /// The order (as its shard told it) if `payer` may pay it now.
    fn payable(order: Option<Order>, payer: &OpenId) -> Result<Order, PaymentError> {
        let order = order.ok_or(PaymentError::NotFound)?;
        if !order.visible_to(payer) {
            return Err(PaymentError::NotFound);
        }
        if &order.customer != payer {
            return Err(PaymentError::Forbidden(
                "only the customer may pay an order",
            ));
        }
        if order.status() != Status::AwaitingPayment {
            return Err(PaymentError::Conflict(format!(
                "an order that is {} cannot be paid",
                order.status()
            )));
        }
        Ok(order)
    }

    fn reusable_prepay(&self, id: &OrderId) -> Result<Option<PayParams>, PaymentError> {
        let Some(record) = self.store.get_payment(id)? else {
            return Ok(None);
        };
        let now = now_utc().unix_timestamp();
        let fresh = record
            .prepaid_at
            .is_some_and(|at| now - at < PREPAY_REUSE.as_secs() as i64);
        Ok(record.params.filter(|_| fresh))
    }

    fn record(
        &self,
        id: &OrderId,
        change: impl FnOnce(&mut PaymentRecord),
    ) -> Result<(), PaymentError> {
        let mut record = self
            .store
            .get_payment(id)?
            .unwrap_or_else(|| PaymentRecord::new(id.clone()));
        change(&mut record);
        self.store.put_payment(&record)?;
        Ok(())
    }

    /// Records WeChat's transaction id for an order unless another one is
    /// already recorded: the first payment's id is never overwritten.
    fn note_transaction(
        &self,
        id: &OrderId,
        transaction_id: &str,
    ) -> Result<TransactionCheck, PaymentError> {
        let mut record = self
            .store
            .get_payment(id)?
            .unwrap_or_else(|| PaymentRecord::new(id.clone()));
        match record.transaction_id.as_deref() {
            Some(known) if known == transaction_id => Ok(TransactionCheck::Same),
            Some(known) => Ok(TransactionCheck::Conflicting(known.to_owned())),
            None => {
                record.transaction_id = Some(transaction_id.to_owned());
                self.store.put_payment(&record)?;
                Ok(TransactionCheck::New)
            }
        }
    }

    /// Checks a verified pay notify against the order (as its shard told
    /// it) and the session: Ok(true) means confirm the payment, Ok(false)
    /// answer SUCCESS and change nothing (an anomaly, already counted).
    fn accept_payment(
        &self,
        notice: &PaidNotice,
        order: Option<Order>,
    ) -> Result<bool, NotifyError> {
        let id = &notice.out_trade_no;
        let order = order.ok_or(NotifyError::UnknownOrder)?;
        // total_fee, not cash_fee: coupons lower what the payer's cash covers.
        if notice.total_fee != order.total_fen() {
            return Err(NotifyError::FeeMismatch);
        }
        match self.note_transaction(id, &notice.transaction_id)? {
            TransactionCheck::New | TransactionCheck::Same => Ok(true),
            TransactionCheck::Conflicting(first) => {
                transaction_conflict(id, &first, &notice.transaction_id);
                Ok(false)
            }
        }
    }

    /// Does a refund notify match the refund we requested for a refunding
    /// order? Anything else is an anomaly and changes nothing.
    fn refund_matches(
        &self,
        notice: &RefundNotice,
        order: Option<Order>,
    ) -> Result<Result<(), &'static str>, NotifyError> {
        let id = &notice.out_trade_no;
        let record = self.store.get_payment(id)?;
        let Some(order) = order else {
            return Ok(Err("unknown_order"));
        };
        let ours = record.and_then(|r| r.out_refund_no);
        let total = order.total_fen();
        Ok(if ours.as_deref() != Some(notice.out_refund_no.as_str()) {
            Err("refund_not_requested")
        } else if notice.refund_fee != order.refund_fen() || notice.total_fee != total {
            Err("refund_amount_mismatch")
        } else if order.status() != Status::Refunding {
            Err("refund_for_order_not_refunding")
        } else {
            Ok(())
        })
    }
}

/// Asks the owning shard for order `id`, then runs `then` on this actor
/// with the answer (the payments actor never reads the orders' storage).
fn with_order<R>(
    act: &PaymentsActor,
    id: &OrderId,
    then: impl FnOnce(
            &mut PaymentsActor,
            Result<Option<Order>, OrderError>,
            &mut Context<PaymentsActor>,
        ) -> ResponseFuture<R>
        + 'static,
) -> ResponseActFuture<PaymentsActor, R>
where
    R: 'static,
{
    let (orders, id) = (act.orders.clone(), id.clone());
    Box::pin(
        async move { orders.peek(&id).await }
            .into_actor(act)
            .then(move |order, act, ctx| actix::fut::wrap_future(then(act, order, ctx))),
    )
}

impl Handler<Prepay> for PaymentsActor {
    type Result = ResponseActFuture<Self, Result<PayParams, PaymentError>>;

    fn handle(&mut self, msg: Prepay, _: &mut Self::Context) -> Self::Result {
        let id = msg.id.clone();
        with_order(self, &id, move |act, order, ctx| match order {
            Ok(order) => act.prepay(msg, order, ctx),
            Err(e) => Box::pin(async move { Err(e.into()) }),
        })
    }
}

impl PaymentsActor {
    #[tracing::instrument(level = "debug", name = "prepay", skip_all, fields(order = %msg.id))]
    fn prepay(
        &mut self,
        msg: Prepay,
        order: Option<Order>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<PayParams, PaymentError>> {
        let order = match Self::payable(order, &msg.payer) {
            Ok(o) => o,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        match self.reusable_prepay(&msg.id) {
            Ok(Some(params)) => return Box::pin(async move { Ok(params) }),
            Ok(None) => {}
            Err(e) => return Box::pin(async move { Err(e) }),
        }
        if let Some(pending) = self.pending.join(&msg.id) {
            return pending;
        }
        let request = UnifiedOrder {
            out_trade_no: order.id.to_string(),
            total_fee: order.total_fen(),
            openid: order.customer.to_string(),
            body: format!(
                "校园跑腿-{}",
                if order.kind.as_str() == "express" {
                    "快递代取"
                } else {
                    "外卖代送"
                }
            ),
            notify_url: self.notify_url(PAY_NOTIFY_PATH),
        };
        let (wechat, addr, store, id) = (
            self.wechat.clone(),
            ctx.address(),
            self.store.clone(),
            msg.id.clone(),
        );
        let call = async move {
            let result = wechat
                .pay()
                .unified_order(&request)
                .await
                .map(|prepay_id| {
                    let params = wechat
                        .pay()
                        .signer()
                        .request_payment(&prepay_id, now_utc().unix_timestamp());
                    (prepay_id, params)
                })
                .map_err(PaymentError::from);
            let params = addr.send(PrepayFinished { id, result }).await??;
            store.commit().await?;
            Ok(params)
        };
        self.pending.start(msg.id, call)
    }
}

impl Handler<PrepayFinished> for PaymentsActor {
    type Result = Result<PayParams, PaymentError>;

    fn handle(
        &mut self,
        PrepayFinished { id, result }: PrepayFinished,
        _: &mut Self::Context,
    ) -> Self::Result {
        self.pending.land(&id);
        let (prepay_id, params) = result?;
        let stored = params.clone();
        self.record(&id, |r| {
            r.prepay_id = Some(prepay_id);
            r.params = Some(stored);
            r.prepaid_at = Some(now_utc().unix_timestamp());
        })?;
        metrics::counter!("lastmile_payments_total", "outcome" => "prepaid").increment(1);
        Ok(params)
    }
}

impl Handler<PayNotify> for PaymentsActor {
    type Result = ResponseActFuture<Self, Result<(), NotifyError>>;

    fn handle(&mut self, msg: PayNotify, _: &mut Self::Context) -> Self::Result {
        let id = msg.notice.out_trade_no.clone();
        with_order(self, &id, move |act, order, _| match order {
            Ok(order) => act.pay_notify(msg.notice, order),
            Err(e) => Box::pin(async move { Err(e.into()) }),
        })
    }
}

impl PaymentsActor {
    #[tracing::instrument(level = "debug", name = "pay_notify", skip_all)]
    fn pay_notify(
        &mut self,
        notice: PaidNotice,
        order: Option<Order>,
    ) -> ResponseFuture<Result<(), NotifyError>> {
        match self.accept_payment(&notice, order) {
            Ok(true) => {}
            Ok(false) => return Box::pin(async { Ok(()) }),
            Err(reason) => {
                tracing::warn!(order = %notice.out_trade_no, %reason, "pay notify refused");
                metrics::counter!("lastmile_pay_notify_failures_total").increment(1);
                return Box::pin(async move { Err(reason) });
            }
        }
        let id = notice.out_trade_no;
        let (orders, formids, store) = (
            self.orders.clone(),
            self.formids.clone(),
            self.store.clone(),
        );
        Box::pin(async move {
            let outcome = orders.confirm_payment(id).await?;
            pool_prepay(&formids, &store, &outcome).await;
            let label = match outcome {
                PaymentOutcome::Paid(_) => "paid",
                PaymentOutcome::AlreadyPaid(_) => "repeat",
                PaymentOutcome::RefundNeeded(_) => "late_refunded",
            };
            metrics::counter!("lastmile_payments_total", "outcome" => label).increment(1);
            Ok(())
        })
    }
}

impl Handler<RefundNotify> for PaymentsActor {
    type Result = ResponseActFuture<Self, Result<(), NotifyError>>;

    fn handle(&mut self, msg: RefundNotify, _: &mut Self::Context) -> Self::Result {
        let id = msg.notice.out_trade_no.clone();
        with_order(self, &id, move |act, order, _| match order {
            Ok(order) => act.refund_notify(msg.notice, order),
            Err(e) => Box::pin(async move { Err(e.into()) }),
        })
    }
}

impl PaymentsActor {
    #[tracing::instrument(level = "debug", name = "refund_notify", skip_all)]
    fn refund_notify(
        &mut self,
        notice: RefundNotice,
        order: Option<Order>,
    ) -> ResponseFuture<Result<(), NotifyError>> {
        let id = notice.out_trade_no.clone();
        match self.refund_matches(&notice, order) {
            Ok(Ok(())) => {}
            Ok(Err(kind)) => {
                // Answered SUCCESS so WeChat stops resending; an operator looks.
                anomaly(kind, &id, &excerpt(&notice.out_refund_no));
                return Box::pin(async { Ok(()) });
            }
            Err(reason) => return Box::pin(async move { Err(reason) }),
        }
        let orders = self.orders.clone();
        Box::pin(async move {
            if notice.refund_status != "SUCCESS" {
                let status = excerpt(&notice.refund_status);
                tracing::warn!(order = %id, %status, "refund did not succeed; needs an operator");
                metrics::counter!("lastmile_refund_notifies_total", "outcome" => "not_success")
                    .increment(1);
                orders
                    .fail_refund(id, format!("WeChat Pay: {status}"))
                    .await?;
                return Ok(());
            }
            orders.confirm_refund(id).await?;
            metrics::counter!("lastmile_refund_notifies_total", "outcome" => "refunded")
                .increment(1);
            Ok(())
        })
    }
}

impl Handler<RecordTransaction> for PaymentsActor {
    type Result = Result<TransactionCheck, PaymentError>;

    fn handle(&mut self, msg: RecordTransaction, _: &mut Self::Context) -> Self::Result {
        self.note_transaction(&msg.id, &msg.transaction_id)
    }
}

impl Handler<RecordRefund> for PaymentsActor {
    type Result = Result<String, PaymentError>;

    fn handle(&mut self, RecordRefund { id }: RecordRefund, _: &mut Self::Context) -> Self::Result {
        // One refund per order: the out_refund_no is derived, so a retry
        // after a crash is the same refund to WeChat Pay.
        let out_refund_no = format!("R{}", id.as_str());
        let no = out_refund_no.clone();
        self.record(&id, |r| r.out_refund_no = Some(no))?;
        Ok(out_refund_no)
    }
}

impl Handler<OrderEvent> for PaymentsActor {
    type Result = ();

    fn handle(&mut self, event: OrderEvent, ctx: &mut Self::Context) {
        match event {
            OrderEvent::PaymentDue(due) => self.payment_due(due, ctx),
            OrderEvent::RefundDue(due) => self.refund_due(due, ctx),
            OrderEvent::Waiting(_)
            | OrderEvent::Taken(..)
            | OrderEvent::Task(_)
            | OrderEvent::OutboxWritten
            | OrderEvent::MoneyWritten => {}
        }
    }
}

impl PaymentsActor {
    /// An unpaid order's deadline passed: a prepaid one is asked about
    /// (and closed) at WeChat Pay before it is cancelled.
    fn payment_due(&mut self, PaymentDue { id, total_fen }: PaymentDue, ctx: &mut Context<Self>) {
        let has_prepay = match self.store.get_payment(&id) {
            Ok(record) => record.is_some_and(|r| r.prepay_id.is_some()),
            Err(e) => {
                // Unknown is not "no prepay": cancelling without asking
                // WeChat could drop a payment. The shard asks again.
                tracing::warn!(order = %id, error = %e, "payment session unreadable; will retry");
                return;
            }
        };
        let (wechat, orders, addr) = (self.wechat.clone(), self.orders.clone(), ctx.address());
        let (formids, store) = (self.formids.clone(), self.store.clone());
        actix::spawn(async move {
            let unpaid = Unpaid {
                id: id.clone(),
                total_fen,
                has_prepay,
            };
            let settled = resolve_unpaid(wechat, orders, addr, unpaid).await;
            if let Ok(Some(outcome)) = &settled {
                pool_prepay(&formids, &store, outcome).await;
            }
            if let Err(e) = settled {
                // The shard asks again later.
                tracing::warn!(order = %id, error = %e, "could not settle an unpaid order yet");
            }
        });
    }
}

/// A paid order's prepay_id may carry three messages to the payer within
/// 7 days of payment: pool it (never before payment; failure only logs).
async fn pool_prepay(formids: &FormIds, store: &PaymentRepo, outcome: &PaymentOutcome) {
    let PaymentOutcome::Paid(order) = outcome else {
        return;
    };
    let prepay = store
        .get_payment(&order.id)
        .ok()
        .flatten()
        .and_then(|r| r.prepay_id);
    if let Some(prepay_id) = prepay {
        if let Err(e) = formids
            .add_prepay(order.customer.clone(), prepay_id, now_utc())
            .await
        {
            tracing::warn!(order = %order.id, error = %e, "prepay_id not pooled");
        }
    }
}

/// An unpaid order past its deadline.
struct Unpaid {
    id: OrderId,
    total_fen: u32,
    has_prepay: bool,
}

/// Timeout of an unpaid order: ask WeChat Pay first (a notify may have been
/// lost), close the trade, and cancel only when it is closed unpaid.
/// Answers the payment outcome when the order turned out paid.
async fn resolve_unpaid(
    wechat: Arc<dyn WeChat>,
    orders: Orders,
    payments: Addr<PaymentsActor>,
    Unpaid {
        id,
        total_fen,
        has_prepay,
    }: Unpaid,
) -> Result<Option<PaymentOutcome>, PaymentError> {
    if !has_prepay {
        orders.cancel_unpaid(id).await?;
        return Ok(None);
    }
    let wx = PaymentError::from;
    // An orderquery "paid" is checked like a notify before it counts.
    let paid = |state: TradeState| async {
        let TradeState::Success {
            transaction_id,
            total_fee,
        } = state
        else {
            return Err(PaymentError::Inconsistent(format!(
                "closeorder said paid, orderquery said {state:?}"
            )));
        };
        if transaction_id.is_empty() || total_fee != total_fen {
            anomaly(
                "query_mismatch",
                &id,
                &format!(
                    "total_fee {total_fee}, transaction_id {}",
                    excerpt(&transaction_id)
                ),
            );
            return Err(PaymentError::Inconsistent(
                "orderquery answer does not match the order".into(),
            ));
        }
        let check = payments
            .send(RecordTransaction {
                id: id.clone(),
                transaction_id: transaction_id.clone(),
            })
            .await??;
        if let TransactionCheck::Conflicting(first) = check {
            transaction_conflict(&id, &first, &transaction_id);
        }
        let outcome = orders.confirm_payment(id.clone()).await?;
        metrics::counter!("lastmile_payments_total", "outcome" => "found_by_query").increment(1);
        Ok::<Option<PaymentOutcome>, PaymentError>(Some(outcome))
    };
    match wechat.pay().order_query(id.as_str()).await.map_err(wx)? {
        state @ TradeState::Success { .. } => return paid(state).await,
        TradeState::Unknown(state) => {
            tracing::warn!(order = %id, state = %excerpt(&state), "unknown trade state; closing")
        }
        TradeState::NotPaid | TradeState::Closed | TradeState::Refunded | TradeState::NotFound => {}
    }
    match wechat.pay().close_order(id.as_str()).await.map_err(wx)? {
        CloseOutcome::Closed => {
            orders.cancel_unpaid(id.clone()).await?;
            metrics::counter!("lastmile_payments_total", "outcome" => "timed_out").increment(1);
            Ok(None)
        }
        CloseOutcome::AlreadyPaid => {
            paid(wechat.pay().order_query(id.as_str()).await.map_err(wx)?).await
        }
    }
}

impl PaymentsActor {
    /// Sends a refunding order's money back, retrying until WeChat Pay
    /// takes the request; one at a time per order.
    fn refund_due(
        &mut self,
        RefundDue {
            id,
            total_fen,
            refund_fen,
        }: RefundDue,
        ctx: &mut Context<Self>,
    ) {
        if self.refunding.contains(&id) {
            return;
        }
        self.refunding.insert(id.clone());
        let request = RefundRequest {
            out_trade_no: id.to_string(),
            out_refund_no: format!("R{}", id.as_str()),
            total_fee: total_fen,
            refund_fee: refund_fen,
            notify_url: self.notify_url(REFUND_NOTIFY_PATH),
        };
        let (wechat, orders, addr, store) = (
            self.wechat.clone(),
            self.orders.clone(),
            ctx.address(),
            self.store.clone(),
        );
        let shards = orders.clone();
        actix::spawn(async move {
            let still_refunding = || async {
                matches!(shards.peek(&id).await, Ok(Some(o)) if o.status() == Status::Refunding)
            };
            let mut delay = REFUND_RETRY;
            loop {
                let requested = async {
                    addr.send(RecordRefund { id: id.clone() }).await??;
                    store.commit().await?;
                    wechat
                        .pay()
                        .refund(&request)
                        .await
                        .map_err(PaymentError::from)
                };
                match requested.await {
                    Ok(()) => break,
                    Err(e) => {
                        // The money must go back: keep trying, more slowly.
                        tracing::warn!(order = %id, error = %e, retry_in = ?delay, "refund request failed");
                        actix_rt::time::sleep(delay).await;
                        delay = (delay * 2).min(REFUND_RETRY_CAP);
                        if !still_refunding().await {
                            addr.do_send(RefundSettled { id });
                            return;
                        }
                    }
                }
            }
            metrics::counter!("lastmile_payments_total", "outcome" => "refund_requested")
                .increment(1);
            // The notify normally settles it; if it never comes, ask.
            actix_rt::time::sleep(REFUND_CHECK_AFTER).await;
            if still_refunding().await {
                if let Ok(RefundState::Success) = wechat.pay().refund_query(id.as_str()).await {
                    let _ = orders.confirm_refund(id.clone()).await;
                }
            }
            // Still refunding later? The owning shard asks again.
            addr.do_send(RefundSettled { id });
        });
    }
}

impl Handler<RefundSettled> for PaymentsActor {
    type Result = ();

    fn handle(&mut self, RefundSettled { id }: RefundSettled, _: &mut Self::Context) {
        self.refunding.remove(&id);
    }
}

/// The façade's handle on the payments actor.
#[derive(Clone)]
pub struct Payments {
    addr: Addr<PaymentsActor>,
}

crate::supervise::inject_panic!(PaymentsActor, "payments", Payments);

impl Payments {
    /// Starts the supervised payments actor; hand [`Payments::listener`] to
    /// the orders shards.
    pub fn start(
        store: PaymentRepo,
        orders: Orders,
        formids: FormIds,
        wechat: Arc<dyn WeChat>,
        notify_base: String,
    ) -> Self {
        let addr = Supervisor::start(move |_| PaymentsActor {
            store,
            orders,
            formids,
            wechat,
            notify_base,
            pending: crate::flight::Flights::new(),
            refunding: std::collections::HashSet::new(),
        });
        Self { addr }
    }

    /// Where the orders shards send their events.
    pub fn listener(&self) -> Recipient<OrderEvent> {
        self.addr.clone().recipient()
    }

    /// The `wx.requestPayment` parameters (one unifiedorder per order).
    pub async fn prepay(&self, id: OrderId, payer: OpenId) -> Result<PayParams, PaymentError> {
        self.addr.send(Prepay { id, payer }).await?
    }

    /// Applies a verified pay notify; the answer for WeChat Pay.
    pub async fn pay_notify(&self, notice: PaidNotice) -> NotifyAck {
        acknowledge(
            self.addr
                .send(PayNotify { notice })
                .await
                .map_err(NotifyError::from)
                .and_then(|r| r),
        )
    }

    /// Applies a decrypted refund notify; the answer for WeChat Pay.
    pub async fn refund_notify(&self, notice: RefundNotice) -> NotifyAck {
        acknowledge(
            self.addr
                .send(RefundNotify { notice })
                .await
                .map_err(NotifyError::from)
                .and_then(|r| r),
        )
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }
}
