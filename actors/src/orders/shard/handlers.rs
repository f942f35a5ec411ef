//! The shard's messages, each answered through [`OrderShard::guarded`].

use super::*;

impl Handler<CreateOrder> for OrderShard {
    type Result = Result<Order, OrderError>;

    #[tracing::instrument(level = "debug", name = "create_order", skip_all, fields(shard = self.shard.index))]
    fn handle(&mut self, msg: CreateOrder, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.create(msg))
    }
}

impl Handler<CancelOrder> for OrderShard {
    type Result = Result<Order, OrderError>;

    #[tracing::instrument(level = "debug", name = "cancel_order", skip_all, fields(shard = self.shard.index, order = %msg.id))]
    fn handle(&mut self, msg: CancelOrder, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.cancel(msg))
    }
}

impl Handler<ConfirmPayment> for OrderShard {
    type Result = Result<PaymentOutcome, OrderError>;

    #[tracing::instrument(level = "debug", name = "confirm_payment", skip_all, fields(order = %msg.id))]
    fn handle(&mut self, msg: ConfirmPayment, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.confirm_payment(&msg.id))
    }
}

impl Handler<CancelUnpaid> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: CancelUnpaid, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.cancel_unpaid(&msg.id))
    }
}

impl Handler<ConfirmRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: ConfirmRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.confirm_refund(&msg.id))
    }
}

impl Handler<AssignCourier> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: AssignCourier, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.assign(msg))
    }
}

impl Handler<UnassignOrder> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: UnassignOrder, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.unassign(msg))
    }
}

impl Handler<OperatorRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: OperatorRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.operator_refund(msg))
    }
}

impl Handler<ShippingReported> for OrderShard {
    type Result = Result<(), OrderError>;

    fn handle(&mut self, msg: ShippingReported, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.shipping_reported(msg))
    }
}

impl Handler<FailRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: FailRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.fail_refund(msg))
    }
}

impl Handler<SettleRefund> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: SettleRefund, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.settle_refund(msg))
    }
}

impl Handler<AddNote> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: AddNote, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.add_note(msg))
    }
}

impl Handler<TakeStep> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: TakeStep, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.take_step(msg))
    }
}

impl Handler<Peek> for OrderShard {
    type Result = Result<Option<Order>, OrderError>;

    fn handle(&mut self, Peek { id }: Peek, _: &mut Self::Context) -> Self::Result {
        self.load(&id)
    }
}

impl Handler<CourierUnsettled> for OrderShard {
    type Result = MessageResult<CourierUnsettled>;

    fn handle(
        &mut self,
        CourierUnsettled { courier }: CourierUnsettled,
        _: &mut Self::Context,
    ) -> Self::Result {
        MessageResult(
            self.active
                .values()
                .filter(|o| o.courier.as_ref() == Some(&courier))
                .filter(|o| {
                    matches!(
                        o.status(),
                        Status::Assigned | Status::PickedUp | Status::Delivered | Status::Disputed
                    )
                })
                .map(|o| Order::clone(o))
                .collect(),
        )
    }
}

impl Handler<OpenDispute> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: OpenDispute, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.open_dispute(msg))
    }
}

impl Handler<ResolveDispute> for OrderShard {
    type Result = Result<Order, OrderError>;

    fn handle(&mut self, msg: ResolveDispute, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |s| s.resolve_dispute(msg))
    }
}

impl Handler<OpenDisputes> for OrderShard {
    type Result = MessageResult<OpenDisputes>;

    fn handle(&mut self, _: OpenDisputes, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.active
                .values()
                .filter(|o| o.status() == Status::Disputed)
                .map(|o| Order::clone(o))
                .collect(),
        )
    }
}

impl Handler<SnapshotsSince> for OrderShard {
    type Result = MessageResult<SnapshotsSince>;

    fn handle(
        &mut self,
        SnapshotsSince { since, campus }: SnapshotsSince,
        _: &mut Self::Context,
    ) -> Self::Result {
        MessageResult(
            self.recent
                .values()
                .filter(|s| s.created_at >= since)
                .filter(|s| campus.as_ref().is_none_or(|c| c.has(s.campus.as_ref())))
                .cloned()
                .collect(),
        )
    }
}

impl Handler<RetellActive> for OrderShard {
    type Result = ();

    fn handle(&mut self, _: RetellActive, _: &mut Self::Context) {
        self.retell_active();
    }
}

impl Handler<Reload> for OrderShard {
    type Result = ();

    fn handle(&mut self, Reload { id }: Reload, ctx: &mut Self::Context) {
        if let Err(e) = self.reload_one(&id) {
            tracing::error!(shard = self.shard.index, error = %e, "cannot re-read an order; restarting");
            ctx.stop();
        }
    }
}

impl Handler<InjectPanic> for OrderShard {
    type Result = Result<(), OrderError>;

    fn handle(&mut self, _: InjectPanic, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, |_| panic!("fault injected into orders shard"))
    }
}
