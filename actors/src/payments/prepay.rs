//! Prepay: made once per order at WeChat Pay, replayed while valid.

use super::*;

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
    pub(super) fn prepay(
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
