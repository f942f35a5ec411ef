//! WeChat Pay's pay and refund notifies, each durable before SUCCESS.

use super::*;

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
    pub(super) fn pay_notify(
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
            pool_prepay(&formids, store.as_ref(), &outcome).await;
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
    pub(super) fn refund_notify(
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
