//! The payments actor: one WeChat Pay session per order — prepay, notify,
//! query and close on timeout, refund and refund notify.
//!
//! It owns the `payments` tree; it learns about orders only from their
//! shards (their events, and `Peek` for one order), and order state changes
//! go to the shards by message (`ConfirmPayment`, `CancelUnpaid`,
//! `ConfirmRefund`), each durable before the notify is answered SUCCESS.
//!
//! Here its state, errors and handle; [`prepay`] makes and replays
//! prepays, [`notify`] takes WeChat Pay's notifies, [`timeout`] settles
//! unpaid orders past their deadline, [`refunds`] sends money back.

mod notify;
mod prepay;
mod refunds;
mod timeout;

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
    store: Arc<dyn PaymentRepo>,
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

/// A paid order's prepay_id may carry three messages to the payer within
/// 7 days of payment: pool it (never before payment; failure only logs).
async fn pool_prepay(formids: &FormIds, store: &dyn PaymentRepo, outcome: &PaymentOutcome) {
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
        store: Arc<dyn PaymentRepo>,
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
