//! The dispatcher actor: owns courier profiles, the set of online couriers
//! (place, open tasks) and the pool of paid orders waiting for one. Every
//! `dispatch.tick`, and at once when an order or a courier appears on an
//! idle system, it runs a matching round ([`crate::matching`]) and asks the
//! owning shards to assign; an order is assigned only when its shard
//! accepts, so grabs, cancels and rounds can race without double
//! assignment. Grabs go through here too, so capacity is checked in one
//! place.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::campus::Campus;
use crate::domain::{now_utc, CourierProfile, OpenId, Order, OrderId, PlaceId, Status};
use crate::matching::{assign, Distances, FreeCourier, WaitingOrder};
use crate::orders::{DispatchLink, OrderError, OrderTaken, OrderWaiting, Orders, TaskDone};
use crate::storage::Store;

/// An order waiting longer than this outranks any fresh one, whatever the
/// distance, so no order starves at a far-away station.
const URGENT_AFTER: Duration = Duration::from_secs(300);
/// How often (at most) offline couriers' untouched tasks are checked.
const REASSIGN_CHECK_EVERY: Duration = Duration::from_secs(5);

/// The `[dispatch]` settings.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Time between rounds.
    pub tick: Duration,
    /// Open tasks per courier.
    pub max_tasks: u32,
    /// Offline time after which a courier's untouched tasks go back.
    pub reassign_after: Duration,
    /// Match automatically (else grab only).
    pub auto: bool,
}

/// Why a courier request failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Not a registered courier, or not online where that is needed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Lost race, full capacity, or the order is not open.
    #[error("{0}")]
    Conflict(String),
    /// No such order.
    #[error("order not found")]
    NotFound,
    /// Storage or an actor failed.
    #[error("{0}")]
    Unavailable(String),
}

impl From<OrderError> for DispatchError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => DispatchError::NotFound,
            OrderError::Transition(t) => DispatchError::Conflict(t.to_string()),
            OrderError::Forbidden(m) => DispatchError::Forbidden(m),
            other => DispatchError::Unavailable(other.to_string()),
        }
    }
}

impl From<MailboxError> for DispatchError {
    fn from(e: MailboxError) -> Self {
        DispatchError::Unavailable(e.to_string())
    }
}

/// A courier as the API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct CourierView {
    /// The courier's openid.
    pub openid: OpenId,
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: crate::domain::PhoneNumber,
    /// Taking orders now.
    pub online: bool,
    /// Where they are (last reported).
    pub place_id: Option<String>,
    /// Open tasks (assigned or picked up).
    pub open_tasks: u32,
}

struct Waiting {
    place: usize,
    customer: OpenId,
    since: OffsetDateTime,
}

struct Present {
    place: usize,
    online: bool,
    offline_since: Option<Instant>,
}

/// The actor.
pub struct Dispatcher {
    store: Store,
    orders: Orders,
    campus: Arc<Campus>,
    places: HashMap<String, usize>,
    dist: Distances,
    config: DispatchConfig,
    couriers: HashMap<OpenId, Present>,
    tasks: HashMap<OpenId, u32>,
    waiting: HashMap<OrderId, Waiting>,
    in_flight: HashSet<OrderId>,
}

/// Become a courier (or update the profile).
#[derive(Message)]
#[rtype(result = "Result<CourierView, DispatchError>")]
pub struct Register {
    /// The profile.
    pub profile: CourierProfile,
}

/// What a courier says about themselves.
#[derive(Debug, Clone)]
pub enum Presence {
    /// Online at a place.
    Online(PlaceId),
    /// Offline (keeps their tasks).
    Offline,
    /// Moved to a place.
    At(PlaceId),
}

/// A courier's presence changed.
#[derive(Message)]
#[rtype(result = "Result<CourierView, DispatchError>")]
pub struct SetPresence {
    /// Who.
    pub courier: OpenId,
    /// What.
    pub presence: Presence,
}

/// An online courier takes an open order (first one wins).
#[derive(Message)]
#[rtype(result = "Result<Order, DispatchError>")]
pub struct Grab {
    /// The order.
    pub id: OrderId,
    /// The courier.
    pub courier: OpenId,
}

/// Open orders for an online courier, nearest to `near` first.
#[derive(Message)]
#[rtype(result = "Result<Vec<OrderId>, DispatchError>")]
pub struct OpenOrders {
    /// Who asks.
    pub courier: OpenId,
    /// Where from.
    pub near: PlaceId,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Settled {
    id: OrderId,
    courier: OpenId,
    result: Result<(), OrderError>,
    waited: Option<Duration>,
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.rebuild();
        ctx.run_interval(self.config.tick, |act, ctx| act.round(ctx));
        let check = (self.config.reassign_after / 2)
            .clamp(Duration::from_millis(100), REASSIGN_CHECK_EVERY);
        ctx.run_interval(check, |act, ctx| act.reassign_stale(ctx));
    }
}

impl Supervised for Dispatcher {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("dispatcher restarting");
        self.in_flight.clear();
    }
}

impl Dispatcher {
    /// Rebuilds waiting orders and task counts from sled.
    fn rebuild(&mut self) {
        self.waiting.clear();
        self.tasks.clear();
        let active = match self.store.scan_active(|o| {
            matches!(
                o.status(),
                Status::Paid | Status::Assigned | Status::PickedUp
            )
        }) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "dispatcher cannot read orders");
                return;
            }
        };
        for order in active {
            match (order.status(), &order.courier) {
                (Status::Paid, _) => self.add_waiting(
                    &order.id,
                    &order.pickup.place_id,
                    order.customer.clone(),
                    order.updated_at,
                ),
                (_, Some(courier)) => *self.tasks.entry(courier.clone()).or_default() += 1,
                _ => {}
            }
        }
        self.publish();
    }

    fn add_waiting(
        &mut self,
        id: &OrderId,
        pickup: &PlaceId,
        customer: OpenId,
        since: OffsetDateTime,
    ) {
        if let Some(&place) = self.places.get(pickup.as_str()) {
            self.waiting.insert(
                id.clone(),
                Waiting {
                    place,
                    customer,
                    since,
                },
            );
        }
    }

    fn publish(&self) {
        metrics::gauge!("lastmile_dispatch_orders_waiting").set(self.waiting.len() as f64);
        let online = self.couriers.values().filter(|c| c.online).count();
        metrics::gauge!("lastmile_dispatch_couriers_online").set(online as f64);
    }

    fn free_slots(&self, courier: &OpenId) -> u32 {
        self.config
            .max_tasks
            .saturating_sub(self.tasks.get(courier).copied().unwrap_or(0))
    }

    fn view(&self, profile: CourierProfile) -> CourierView {
        let present = self.couriers.get(&profile.openid);
        CourierView {
            online: present.is_some_and(|p| p.online),
            place_id: present.map(|p| self.campus.places()[p.place].id.clone()),
            open_tasks: self.tasks.get(&profile.openid).copied().unwrap_or(0),
            openid: profile.openid,
            name: profile.name,
            phone: profile.phone,
        }
    }

    fn profile(&self, courier: &OpenId) -> Result<CourierProfile, DispatchError> {
        self.store
            .get_courier(courier)
            .map_err(|e| DispatchError::Unavailable(e.to_string()))?
            .ok_or(DispatchError::Forbidden(
                "become a courier first (POST /api/v1/couriers/me)",
            ))
    }

    /// One matching round over everything waiting and every free slot.
    fn round(&mut self, ctx: &mut Context<Self>) {
        if !self.config.auto || self.waiting.is_empty() {
            return;
        }
        let started = Instant::now();
        let now = now_utc();
        let orders: Vec<WaitingOrder<OrderId, OpenId>> = self
            .waiting
            .iter()
            .filter(|(id, _)| !self.in_flight.contains(*id))
            .map(|(id, w)| {
                let waited = (now - w.since).whole_milliseconds().max(0) as u64;
                WaitingOrder {
                    id: id.clone(),
                    place: w.place,
                    urgent: waited > URGENT_AFTER.as_millis() as u64,
                    waited_ms: waited,
                    customer: w.customer.clone(),
                }
            })
            .collect();
        let couriers: Vec<FreeCourier<OpenId>> = self
            .couriers
            .iter()
            .filter(|(_, p)| p.online)
            .map(|(id, p)| FreeCourier {
                id: id.clone(),
                place: p.place,
                free: self.free_slots(id),
            })
            .filter(|c| c.free > 0)
            .collect();
        if orders.is_empty() || couriers.is_empty() {
            return;
        }
        let pairs = assign(&orders, &couriers, &self.dist);
        let distance: i64 = pairs
            .iter()
            .map(|&(o, k)| self.dist.cm(couriers[k].place, orders[o].place))
            .sum();
        metrics::histogram!("lastmile_dispatch_round_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("lastmile_dispatch_round_distance_metres")
            .record(distance as f64 / 100.0);
        for (o, k) in pairs {
            let (id, courier) = (orders[o].id.clone(), couriers[k].id.clone());
            let waited = Duration::from_millis(orders[o].waited_ms);
            self.reserve(&id, &courier);
            let (orders_handle, addr) = (self.orders.clone(), ctx.address());
            actix::spawn(async move {
                let result = orders_handle
                    .assign(id.clone(), courier.clone())
                    .await
                    .map(|_| ());
                addr.do_send(Settled {
                    id,
                    courier,
                    result,
                    waited: Some(waited),
                });
            });
        }
    }

    fn reserve(&mut self, id: &OrderId, courier: &OpenId) {
        *self.tasks.entry(courier.clone()).or_default() += 1;
        self.in_flight.insert(id.clone());
    }

    /// Books the outcome of an assignment attempt (`failure` is None when
    /// the shard accepted it).
    fn settle(
        &mut self,
        id: &OrderId,
        courier: &OpenId,
        failure: Option<&OrderError>,
        waited: Option<Duration>,
    ) {
        self.in_flight.remove(id);
        match failure {
            None => {
                self.waiting.remove(id);
                if let Some(w) = waited {
                    metrics::histogram!("lastmile_dispatch_assignment_latency_seconds")
                        .record(w.as_secs_f64());
                }
            }
            Some(e) => {
                if let Some(n) = self.tasks.get_mut(courier) {
                    *n = n.saturating_sub(1);
                }
                match e {
                    // Their own order: it stays in the pool for someone else.
                    OrderError::Forbidden(_) => {}
                    // Cancelled, grabbed or otherwise not paid any more: out of the pool.
                    OrderError::Transition(_) | OrderError::NotFound => {
                        self.waiting.remove(id);
                    }
                    _ => tracing::warn!(order = %id, error = %e, "assignment failed; will retry"),
                }
            }
        }
        self.publish();
    }

    /// Couriers offline longer than `reassign_after` give back untouched tasks.
    fn reassign_stale(&mut self, ctx: &mut Context<Self>) {
        let stale: Vec<OpenId> = self
            .couriers
            .iter()
            .filter(|(id, p)| {
                !p.online
                    && p.offline_since
                        .is_some_and(|t| t.elapsed() >= self.config.reassign_after)
                    && self.tasks.get(*id).copied().unwrap_or(0) > 0
            })
            .map(|(id, _)| id.clone())
            .collect();
        if stale.is_empty() {
            return;
        }
        let (store, orders) = (self.store.clone(), self.orders.clone());
        let _ = ctx;
        actix::spawn(async move {
            for courier in stale {
                let theirs = store.scan_active(|o| {
                    o.status() == Status::Assigned && o.courier.as_ref() == Some(&courier)
                });
                for order in theirs.unwrap_or_default() {
                    if let Err(e) = orders.unassign(order.id.clone(), courier.clone()).await {
                        tracing::warn!(order = %order.id, error = %e, "could not take a task back");
                    }
                }
            }
        });
    }
}

impl Handler<Register> for Dispatcher {
    type Result = ResponseFuture<Result<CourierView, DispatchError>>;

    fn handle(&mut self, Register { profile }: Register, _: &mut Self::Context) -> Self::Result {
        let stored = self.store.put_courier(&profile);
        let view = self.view(profile);
        let store = self.store.clone();
        Box::pin(async move {
            stored.map_err(|e| DispatchError::Unavailable(e.to_string()))?;
            store
                .commit()
                .await
                .map_err(|e| DispatchError::Unavailable(e.to_string()))?;
            Ok(view)
        })
    }
}

impl Handler<SetPresence> for Dispatcher {
    type Result = Result<CourierView, DispatchError>;

    fn handle(
        &mut self,
        SetPresence { courier, presence }: SetPresence,
        ctx: &mut Self::Context,
    ) -> Self::Result {
        let profile = self.profile(&courier)?;
        let place_of =
            |p: &PlaceId, places: &HashMap<String, usize>| places.get(p.as_str()).copied();
        match presence {
            Presence::Online(place) => {
                let place = place_of(&place, &self.places).ok_or(DispatchError::NotFound)?;
                self.couriers.insert(
                    courier,
                    Present {
                        place,
                        online: true,
                        offline_since: None,
                    },
                );
                // A free courier on an idle system: match now, not at the next tick.
                self.round(ctx);
            }
            Presence::Offline => {
                if let Some(p) = self.couriers.get_mut(&courier) {
                    p.online = false;
                    p.offline_since = Some(Instant::now());
                }
            }
            Presence::At(place) => {
                let place = place_of(&place, &self.places).ok_or(DispatchError::NotFound)?;
                let entry = self.couriers.entry(courier).or_insert(Present {
                    place,
                    online: false,
                    offline_since: Some(Instant::now()),
                });
                entry.place = place;
            }
        }
        self.publish();
        Ok(self.view(profile))
    }
}

impl Handler<Grab> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<Order, DispatchError>>;

    fn handle(&mut self, Grab { id, courier }: Grab, _: &mut Self::Context) -> Self::Result {
        let checked = (|| {
            self.profile(&courier)?;
            if !self.couriers.get(&courier).is_some_and(|p| p.online) {
                return Err(DispatchError::Forbidden("go online to take orders"));
            }
            if self.free_slots(&courier) == 0 {
                return Err(DispatchError::Conflict(format!(
                    "a courier holds at most {} open tasks",
                    self.config.max_tasks
                )));
            }
            if self.in_flight.contains(&id) {
                return Err(DispatchError::Conflict(
                    "someone else is taking this order".into(),
                ));
            }
            Ok(())
        })();
        if let Err(e) = checked {
            return Box::pin(async move { Err(e) }.into_actor(self));
        }
        self.reserve(&id, &courier);
        let orders = self.orders.clone();
        let (sid, scourier) = (id.clone(), courier.clone());
        Box::pin(
            async move { orders.assign(id, courier).await }
                .into_actor(self)
                .map(move |result, act, _| {
                    act.settle(&sid, &scourier, result.as_ref().err(), None);
                    result.map_err(DispatchError::from)
                }),
        )
    }
}

impl Handler<OpenOrders> for Dispatcher {
    type Result = Result<Vec<OrderId>, DispatchError>;

    fn handle(
        &mut self,
        OpenOrders { courier, near }: OpenOrders,
        _: &mut Self::Context,
    ) -> Self::Result {
        self.profile(&courier)?;
        if !self.couriers.get(&courier).is_some_and(|p| p.online) {
            return Err(DispatchError::Forbidden(
                "open orders are for online couriers",
            ));
        }
        let from = *self
            .places
            .get(near.as_str())
            .ok_or(DispatchError::NotFound)?;
        let mut open: Vec<(i64, OffsetDateTime, &OrderId)> = self
            .waiting
            .iter()
            .filter(|(id, w)| !self.in_flight.contains(*id) && w.customer != courier)
            .map(|(id, w)| (self.dist.cm(from, w.place), w.since, id))
            .collect();
        open.sort();
        Ok(open.into_iter().map(|(_, _, id)| id.clone()).collect())
    }
}

impl Handler<OrderWaiting> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: OrderWaiting, ctx: &mut Self::Context) {
        let idle = self.waiting.is_empty();
        self.add_waiting(&msg.id, &msg.pickup, msg.customer, msg.since);
        self.publish();
        if idle {
            self.round(ctx);
        }
    }
}

impl Handler<OrderTaken> for Dispatcher {
    type Result = ();

    fn handle(&mut self, OrderTaken { id }: OrderTaken, _: &mut Self::Context) {
        self.waiting.remove(&id);
        self.publish();
    }
}

impl Handler<TaskDone> for Dispatcher {
    type Result = ();

    fn handle(&mut self, TaskDone { courier }: TaskDone, _: &mut Self::Context) {
        if let Some(n) = self.tasks.get_mut(&courier) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Handler<Settled> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: Settled, _: &mut Self::Context) {
        self.settle(&msg.id, &msg.courier, msg.result.as_ref().err(), msg.waited);
    }
}

/// The façade's handle on the dispatcher.
#[derive(Clone)]
pub struct Dispatch {
    addr: Addr<Dispatcher>,
}

impl Dispatch {
    /// Starts the supervised dispatcher and links the orders shards to it.
    pub fn start(
        store: Store,
        orders: Orders,
        campus: Arc<Campus>,
        config: DispatchConfig,
    ) -> Self {
        let shards = orders.clone();
        let places: HashMap<String, usize> = campus
            .places()
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let ids: Vec<String> = campus.places().iter().map(|p| p.id.clone()).collect();
        let dist = Distances::new(ids.len(), |a, b| {
            campus.distance(&ids[a], &ids[b]).unwrap_or(0.0)
        });
        let addr = Supervisor::start(move |_| Dispatcher {
            store,
            orders,
            campus,
            places,
            dist,
            config,
            couriers: HashMap::new(),
            tasks: HashMap::new(),
            waiting: HashMap::new(),
            in_flight: HashSet::new(),
        });
        shards.attach_dispatch(DispatchLink {
            waiting: addr.clone().recipient(),
            taken: addr.clone().recipient(),
            task_done: addr.clone().recipient(),
        });
        Self { addr }
    }

    /// Registers (or updates) a courier.
    pub async fn register(&self, profile: CourierProfile) -> Result<CourierView, DispatchError> {
        self.addr.send(Register { profile }).await?
    }

    /// Online / offline / location.
    pub async fn presence(
        &self,
        courier: OpenId,
        presence: Presence,
    ) -> Result<CourierView, DispatchError> {
        self.addr.send(SetPresence { courier, presence }).await?
    }

    /// Grab an open order.
    pub async fn grab(&self, id: OrderId, courier: OpenId) -> Result<Order, DispatchError> {
        self.addr.send(Grab { id, courier }).await?
    }

    /// Open orders near a place, for an online courier.
    pub async fn open_orders(
        &self,
        courier: OpenId,
        near: PlaceId,
    ) -> Result<Vec<OrderId>, DispatchError> {
        self.addr.send(OpenOrders { courier, near }).await?
    }

    /// True while the actor runs.
    pub fn is_alive(&self) -> bool {
        self.addr.connected()
    }
}
