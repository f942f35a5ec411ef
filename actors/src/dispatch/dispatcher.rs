//! One campus's dispatcher actor: a thin shell around [`DispatchCore`].
//! It passes the time in, runs a round every `dispatch.tick` (and at once
//! when a paid order or a free courier appears on an idle campus), asks
//! the owning shards for what the core decided, and feeds their answers
//! and events back. Each campus runs on its own arbiter thread under its
//! own supervisor, so a slow round or a panic stays on its campus.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use time::OffsetDateTime;

use super::core::{DispatchCore, Round};
use super::couriers::{self, Registry};
use super::views::{Board, CourierView, TaskList};
use super::DispatchError;
use crate::campus::Campus;
use crate::domain::{
    now_utc, ChangedBy, CourierProfile, OpenId, OperatorName, Order, OrderId, PlaceId,
};
use crate::orders::{CampusOf, OrderError, OrderEvent, Orders};

/// How often (at most) offline couriers' untouched tasks are checked.
const REASSIGN_CHECK_EVERY: Duration = Duration::from_secs(5);

/// What a courier says about themselves on a campus.
#[derive(Debug, Clone)]
pub enum Presence {
    /// Online at a place.
    Online(PlaceId),
    /// Offline (keeps their tasks).
    Offline,
    /// Moved to a place.
    At(PlaceId),
}

/// The actor.
pub struct Dispatcher {
    core: DispatchCore,
    campus: Arc<Campus>,
    /// The campus as orders are checked against it.
    campus_of: CampusOf,
    orders: Orders,
    registry: Addr<Registry>,
    tick: Duration,
    auto: bool,
    /// A round is due as soon as the mailbox is drained: a burst of new
    /// orders or couriers costs one round, not one each.
    round_pending: bool,
}

/// A courier's presence changed here.
#[derive(Message)]
#[rtype(result = "Result<CourierView, DispatchError>")]
pub(super) struct SetPresence {
    pub profile: CourierProfile,
    pub presence: Presence,
}

/// A courier moves to another campus: their presence here ends, unless
/// they hold tasks here (409).
#[derive(Message)]
#[rtype(result = "Result<(), DispatchError>")]
pub(super) struct Leave(pub OpenId);

/// An online courier takes an open order (first one wins), or an
/// operator hands an order to one.
#[derive(Message)]
#[rtype(result = "Result<Order, DispatchError>")]
pub(super) struct Grab {
    pub id: OrderId,
    pub profile: CourierProfile,
    /// The operator, when it is their reassignment (the order may then be
    /// taken from another courier who has not picked it up).
    pub operator: Option<OperatorName>,
}

/// An operator takes a courier offline; their open orders note it.
#[derive(Message)]
#[rtype(result = "Result<(CourierView, bool), DispatchError>")]
pub(super) struct ForceOffline {
    pub profile: CourierProfile,
    pub operator: OperatorName,
}

/// A courier's profile changed (a decision, new papers): a courier barred
/// by it goes offline; the answer is the tasks not yet picked up, which
/// the caller takes back before it answers its own caller.
#[derive(Message)]
#[rtype(result = "Vec<OrderId>")]
pub(super) struct Changed {
    pub profile: CourierProfile,
}

/// Profiles the dispatcher asked the registry for.
#[derive(Message)]
#[rtype(result = "()")]
struct Know(Vec<CourierProfile>);

/// The board of this campus.
#[derive(Message)]
#[rtype(result = "Board")]
pub(super) struct GetBoard;

/// A courier's tasks here.
#[derive(Message)]
#[rtype(result = "TaskList")]
pub(super) struct TasksOf(pub OpenId);

/// When an order is predicted to be handed over by its courier.
#[derive(Message)]
#[rtype(result = "Option<OffsetDateTime>")]
pub(super) struct EtaOf {
    pub id: OrderId,
    pub courier: OpenId,
}

/// Open orders for an online courier, nearest to `near` first.
#[derive(Message)]
#[rtype(result = "Result<Vec<OrderId>, DispatchError>")]
pub(super) struct OpenOrders {
    pub profile: CourierProfile,
    pub near: PlaceId,
}

/// The couriers of `0` present here or holding tasks here, as views.
#[derive(Message)]
#[rtype(result = "Vec<Option<CourierView>>")]
pub(super) struct Views(pub Vec<CourierProfile>);

/// A shard's answer to an assignment this dispatcher asked for.
#[derive(Message)]
#[rtype(result = "()")]
struct Settled {
    id: OrderId,
    courier: OpenId,
    result: Result<(), OrderError>,
    waited: Duration,
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Forget orders and tasks and ask the shards to tell them again
        // (their owners; this actor never reads their storage).
        self.core.restart(Instant::now());
        self.orders.retell_active();
        self.publish();
        ctx.run_interval(self.tick, |act, ctx| act.round(ctx));
        let settings = self.core.settings();
        let check = (settings.reassign_after.min(settings.presence_ttl) / 2)
            .clamp(Duration::from_millis(100), REASSIGN_CHECK_EVERY);
        ctx.run_interval(check, |act, ctx| {
            act.reassign_stale();
            act.learn_unknown(ctx);
            act.publish();
        });
    }
}

impl Supervised for Dispatcher {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(campus = self.campus.id(), "dispatcher restarting");
    }
}

impl Dispatcher {
    /// A dispatcher for `campus`.
    pub(super) fn new(
        core: DispatchCore,
        campus: Arc<Campus>,
        campus_of: CampusOf,
        orders: Orders,
        registry: Addr<Registry>,
        tick: Duration,
        auto: bool,
    ) -> Self {
        Self {
            core,
            campus,
            campus_of,
            orders,
            registry,
            tick,
            auto,
            round_pending: false,
        }
    }

    fn publish(&self) {
        let (waiting, online) = self.core.counts(Instant::now());
        let campus = self.campus.id().to_owned();
        metrics::gauge!("lastmile_dispatch_orders_waiting", "campus" => campus.clone())
            .set(waiting as f64);
        metrics::gauge!("lastmile_dispatch_couriers_online", "campus" => campus).set(online as f64);
    }

    /// A round before the tick: once the messages already waiting are
    /// handled, and one for all of them.
    fn round_soon(&mut self, ctx: &mut Context<Self>) {
        if self.round_pending {
            return;
        }
        self.round_pending = true;
        ctx.run_later(Duration::ZERO, |act, ctx| {
            act.round_pending = false;
            act.round(ctx);
        });
    }

    /// One planning round; its decisions are asked of the owning shards.
    fn round(&mut self, ctx: &mut Context<Self>) {
        if !self.auto || self.core.is_idle() {
            return;
        }
        let started = Instant::now();
        let core = &mut self.core;
        let Some(round) =
            crate::supervise::contain("dispatcher", ctx, || core.round(now_utc(), started))
        else {
            return;
        };
        let Round {
            planned,
            sends,
            distances,
        } = round;
        if !planned {
            return;
        }
        metrics::histogram!("lastmile_dispatch_round_seconds")
            .record(started.elapsed().as_secs_f64());
        for metres in distances {
            metrics::histogram!("lastmile_dispatch_round_distance_metres").record(metres);
        }
        for send in sends {
            let (orders, addr, campus) =
                (self.orders.clone(), ctx.address(), self.campus_of.clone());
            actix::spawn(async move {
                let result = orders
                    .assign(
                        send.order.clone(),
                        send.courier.clone(),
                        ChangedBy::Dispatcher,
                        false,
                        campus,
                    )
                    .await
                    .map(|_| ());
                addr.do_send(Settled {
                    id: send.order,
                    courier: send.courier,
                    result,
                    waited: send.waited,
                });
            });
        }
    }

    /// Asks the shards to take tasks back from a courier.
    fn unassign_all(&self, ids: Vec<OrderId>, courier: &OpenId, by: ChangedBy) {
        for id in ids {
            let (orders, courier, by) = (self.orders.clone(), courier.clone(), by.clone());
            actix::spawn(async move {
                if let Err(e) = orders.unassign(id.clone(), courier, by).await {
                    tracing::warn!(order = %id, error = %e, "could not take a task back");
                }
            });
        }
    }

    /// Couriers offline too long, or barred, give back what they have not
    /// picked up.
    fn reassign_stale(&mut self) {
        for (id, courier) in self.core.stale(now_utc(), Instant::now()) {
            self.unassign_all(vec![id], &courier, ChangedBy::Dispatcher);
        }
    }

    /// Asks the registry for the profiles of couriers holding tasks here
    /// that this dispatcher has not seen (after a start), so that the
    /// board names them and a suspension a crash interrupted is finished.
    fn learn_unknown(&self, ctx: &mut Context<Self>) {
        let unknown = self.core.unknown_couriers();
        if unknown.is_empty() {
            return;
        }
        let (registry, addr) = (self.registry.clone(), ctx.address());
        actix::spawn(async move {
            let mut known = Vec::with_capacity(unknown.len());
            for courier in unknown {
                if let Ok(Ok(Some(profile))) = registry.send(couriers::Profile(courier)).await {
                    known.push(profile);
                }
            }
            addr.do_send(Know(known));
        });
    }

    /// A place of this campus; `field` names it in the error.
    fn place(&self, id: &PlaceId, field: &str) -> Result<usize, DispatchError> {
        self.core.place(id.as_str()).ok_or_else(|| {
            DispatchError::Invalid(format!(
                "{field} is not a place on campus {}, where you work",
                self.campus.id()
            ))
        })
    }
}

impl Handler<SetPresence> for Dispatcher {
    type Result = Result<CourierView, DispatchError>;

    fn handle(&mut self, msg: SetPresence, ctx: &mut Self::Context) -> Self::Result {
        let (now, at) = (now_utc(), Instant::now());
        let courier = msg.profile.openid.clone();
        match msg.presence {
            Presence::Online(place) => {
                msg.profile
                    .may_work(now)
                    .map_err(DispatchError::Forbidden)?;
                let place = self.place(&place, "place_id")?;
                // A courier who just came online: match now, not at the next
                // tick. Another /online of one who is on is only a refresh.
                if !self.core.set_online(courier, place, at) {
                    self.round_soon(ctx);
                }
            }
            Presence::Offline => {
                self.core.go_offline(&courier, at);
            }
            Presence::At(place) => {
                let place = self.place(&place, "place_id")?;
                self.core.set_location(courier, place, at);
            }
        }
        self.core.know(msg.profile.clone());
        self.publish();
        Ok(self.core.courier_view(msg.profile, now, at))
    }
}

impl Handler<Leave> for Dispatcher {
    type Result = Result<(), DispatchError>;

    fn handle(&mut self, Leave(courier): Leave, _: &mut Self::Context) -> Self::Result {
        if self.core.holds_tasks(&courier) {
            return Err(DispatchError::Conflict(format!(
                "you have open tasks on campus {}; finish them before working on another",
                self.campus.id()
            )));
        }
        self.core.forget(&courier);
        self.publish();
        Ok(())
    }
}

impl Handler<Grab> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<Order, DispatchError>>;

    fn handle(&mut self, msg: Grab, _: &mut Self::Context) -> Self::Result {
        let Grab {
            id,
            profile,
            operator,
        } = msg;
        let courier = profile.openid.clone();
        let checked = profile
            .may_work(now_utc())
            .map_err(DispatchError::Forbidden)
            .and_then(|()| {
                self.core
                    .may_take(&courier, &id, operator.is_some(), Instant::now())
            });
        if let Err(e) = checked {
            return Box::pin(async move { Err(e) }.into_actor(self));
        }
        self.core.know(profile);
        self.core.reserve(&id, &courier);
        let (orders, campus) = (self.orders.clone(), self.campus_of.clone());
        let (sid, scourier) = (id.clone(), courier.clone());
        Box::pin(
            async move {
                let take_over = operator.is_some();
                let by = match operator {
                    Some(name) => ChangedBy::Operator(Some(name)),
                    None => ChangedBy::Courier(courier.clone()),
                };
                orders.assign(id, courier, by, take_over, campus).await
            }
            .into_actor(self)
            .map(move |result, act, _| {
                let back = act
                    .core
                    .settle(&sid, &scourier, result.as_ref().err(), now_utc());
                act.unassign_all(back, &scourier, ChangedBy::Dispatcher);
                act.publish();
                result.map_err(DispatchError::from)
            }),
        )
    }
}

impl Handler<ForceOffline> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<(CourierView, bool), DispatchError>>;

    fn handle(&mut self, msg: ForceOffline, _: &mut Self::Context) -> Self::Result {
        let ForceOffline { profile, operator } = msg;
        let courier = profile.openid.clone();
        self.core.know(profile.clone());
        if !self.core.go_offline(&courier, Instant::now()) {
            let view = self.core.courier_view(profile, now_utc(), Instant::now());
            return Box::pin(async move { Ok((view, false)) }.into_actor(self));
        }
        self.publish();
        let open = self.core.tasks_of(&courier);
        let orders = self.orders.clone();
        let note = format!("operator set courier {} ({courier}) offline", profile.name);
        Box::pin(
            async move {
                for id in open {
                    let by = ChangedBy::Operator(Some(operator.clone()));
                    if let Err(e) = orders.add_note(id.clone(), by, note.clone()).await {
                        tracing::warn!(order = %id, error = %e, "could not note a forced offline");
                    }
                }
            }
            .into_actor(self)
            .map(move |(), act, _| {
                Ok((
                    act.core.courier_view(profile, now_utc(), Instant::now()),
                    true,
                ))
            }),
        )
    }
}

impl Handler<Changed> for Dispatcher {
    type Result = MessageResult<Changed>;

    fn handle(&mut self, msg: Changed, _: &mut Self::Context) -> Self::Result {
        let courier = msg.profile.openid.clone();
        let barred = msg.profile.may_work(now_utc()).is_err();
        let seen = self.core.profile(&courier).is_some() || self.core.holds_tasks(&courier);
        self.core.know(msg.profile);
        if !(barred && seen) {
            return MessageResult(Vec::new());
        }
        self.core.go_offline(&courier, Instant::now());
        let back = self.core.take_back(&courier);
        self.publish();
        MessageResult(back)
    }
}

impl Handler<Know> for Dispatcher {
    type Result = ();

    fn handle(&mut self, Know(profiles): Know, _: &mut Self::Context) {
        for profile in profiles {
            self.core.know(profile);
        }
    }
}

impl Handler<GetBoard> for Dispatcher {
    type Result = MessageResult<GetBoard>;

    fn handle(&mut self, _: GetBoard, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.board(now_utc(), Instant::now()))
    }
}

impl Handler<TasksOf> for Dispatcher {
    type Result = MessageResult<TasksOf>;

    fn handle(&mut self, TasksOf(courier): TasksOf, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.core.task_list(&courier, now_utc(), Instant::now()))
    }
}

impl Handler<EtaOf> for Dispatcher {
    type Result = Option<OffsetDateTime>;

    fn handle(&mut self, EtaOf { id, courier }: EtaOf, _: &mut Self::Context) -> Self::Result {
        self.core.eta_of(&id, &courier, now_utc())
    }
}

impl Handler<OpenOrders> for Dispatcher {
    type Result = Result<Vec<OrderId>, DispatchError>;

    fn handle(&mut self, msg: OpenOrders, _: &mut Self::Context) -> Self::Result {
        let courier = msg.profile.openid.clone();
        msg.profile
            .may_work(now_utc())
            .map_err(DispatchError::Forbidden)?;
        if !self.core.is_online(&courier, Instant::now()) {
            return Err(DispatchError::Forbidden(
                "open orders are for online couriers",
            ));
        }
        let near = self.place(&msg.near, "near")?;
        Ok(self.core.open_orders(&courier, near))
    }
}

impl Handler<Views> for Dispatcher {
    type Result = MessageResult<Views>;

    fn handle(&mut self, Views(profiles): Views, _: &mut Self::Context) -> Self::Result {
        let (now, at) = (now_utc(), Instant::now());
        MessageResult(
            profiles
                .into_iter()
                .map(|p| {
                    let (online, place, tasks) = self.core.presence_of(&p.openid, at);
                    (place.is_some() || tasks > 0 || online)
                        .then(|| self.core.courier_view(p, now, at))
                })
                .collect(),
        )
    }
}

impl Handler<OrderEvent> for Dispatcher {
    type Result = ();

    fn handle(&mut self, event: OrderEvent, ctx: &mut Self::Context) {
        match event {
            OrderEvent::Waiting(waiting) => {
                let idle = self.core.is_idle();
                let (id, pickup, dropoff) = (
                    waiting.id.clone(),
                    waiting.pickup.clone(),
                    waiting.dropoff.clone(),
                );
                self.core.add_waiting(waiting);
                if self.core.is_stranded(&id) {
                    tracing::warn!(order = %id, campus = self.campus.id(), pickup = pickup.as_str(),
                        dropoff = dropoff.as_str(),
                        "a paid order's places are not on the campus map; it waits for an operator");
                }
                self.publish();
                if idle {
                    self.round_soon(ctx);
                }
            }
            OrderEvent::Taken(id, _) => {
                self.core.remove_waiting(&id);
                self.publish();
            }
            OrderEvent::Task(changed) => {
                self.core.task_changed(changed, now_utc(), Instant::now());
            }
            OrderEvent::PaymentDue(_)
            | OrderEvent::RefundDue(_)
            | OrderEvent::OutboxWritten
            | OrderEvent::MoneyWritten => {}
        }
    }
}

impl Handler<Settled> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: Settled, _: &mut Self::Context) {
        let failure = msg.result.as_ref().err();
        match failure {
            None => metrics::histogram!("lastmile_dispatch_assignment_latency_seconds")
                .record(msg.waited.as_secs_f64()),
            Some(OrderError::Forbidden(_) | OrderError::Transition(_) | OrderError::NotFound) => {}
            Some(e) => {
                tracing::warn!(order = %msg.id, error = %e, "assignment failed; will retry")
            }
        }
        let back = self.core.settle(&msg.id, &msg.courier, failure, now_utc());
        self.unassign_all(back, &msg.courier, ChangedBy::Dispatcher);
        self.publish();
    }
}

/// The façade's handle on one campus's dispatcher.
#[derive(Clone)]
pub(super) struct CampusDispatcher {
    pub(super) addr: Addr<Dispatcher>,
}

crate::supervise::inject_panic!(Dispatcher, "dispatcher", CampusDispatcher);
