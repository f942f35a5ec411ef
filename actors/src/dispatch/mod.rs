//! Dispatch: the live dispatcher actor (this module), the pure planning
//! core ([`planner`], with `assignment`'s min-cost matching) and the
//! offline replay of public MDRP instances through that same planner
//! ([`replay`], [`mdrp`]).
//!
//! The dispatcher actor: owns courier profiles, the set of online couriers
//! (place, open tasks) and the pool of paid orders waiting for one. Every
//! `dispatch.tick`, and at once when an order or a courier appears on an
//! idle system, it hands the planner the waiting orders and the online
//! couriers — idle ones where they are, busy ones where and when their
//! route ends, and the bundles still to be picked up at one place, which
//! later orders may join — and asks the owning shards to assign what the
//! planner sends now. An order is assigned only when its shard accepts, so
//! grabs, cancels and rounds can race without double assignment. Grabs go
//! through here too, so capacity (`dispatch.max_tasks`, also the largest
//! bundle) is checked in one place.
//!
//! Presence: a courier is online from an online call until an offline
//! call or until `dispatch.presence_ttl` passes without an online or
//! location call (an app that died goes quiet). It keeps an index of each
//! courier's open tasks, fed by the shards' [`OrderEvent`]s (and told again
//! by them whenever it starts); tasks of a courier offline for
//! `dispatch.reassign_after` that are not picked up go back to the pool.
//! After a restart nobody is present, so offline time counts from the start.

pub(crate) mod assignment;
pub mod mdrp;
pub mod planner;
pub mod replay;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use time::OffsetDateTime;

use crate::campus::Campus;
use crate::domain::{
    now_utc, Application, ChangedBy, CourierProfile, Decision, OpenId, OperatorName, Order,
    OrderId, PlaceId, Review, Status, UploadId,
};
use crate::orders::{OrderError, OrderEvent, OrderWaiting, Orders, TaskChanged};
use crate::storage::CourierRepo;
use planner::{Params, Point, RouteTask};

/// How often (at most) offline couriers' untouched tasks are checked.
const REASSIGN_CHECK_EVERY: Duration = Duration::from_secs(5);
/// How long a courier's task list shows a task taken away from them.
const WITHDRAWN_SHOWN_FOR: Duration = Duration::from_secs(3600);
/// How many taken-away tasks a courier's list shows at most.
const WITHDRAWN_SHOWN_MAX: usize = 20;

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
    /// No online or location call for this long = offline.
    pub presence_ttl: Duration,
    /// Courier speed, metres per minute.
    pub speed: f64,
    /// Time spent at a pickup.
    pub pickup_service: Duration,
    /// Time spent at a drop-off.
    pub dropoff_service: Duration,
    /// Click-to-door target.
    pub target: Duration,
    /// Click-to-door never to pass.
    pub max: Duration,
    /// Operators approve couriers (`couriers.review`); else every applicant
    /// is approved at once.
    pub review: bool,
    /// Orders a courier may give back per China day (`couriers.releases_per_day`).
    pub releases_per_day: u32,
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
    /// An operator named someone who is not a courier.
    #[error("no such courier")]
    UnknownCourier,
    /// Storage or an actor failed.
    #[error("the dispatcher is unavailable")]
    Unavailable(#[source] crate::errors::Cause),
}

impl From<OrderError> for DispatchError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => DispatchError::NotFound,
            OrderError::Transition(t) => DispatchError::Conflict(t.to_string()),
            OrderError::Forbidden(m) => DispatchError::Forbidden(m),
            other => DispatchError::Unavailable(crate::errors::cause(other)),
        }
    }
}

impl From<MailboxError> for DispatchError {
    fn from(e: MailboxError) -> Self {
        DispatchError::Unavailable(crate::errors::cause(e))
    }
}

/// A courier as the API shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// Where the application stands (a suspension past its end reads approved).
    pub review: Review,
    /// The operator's reason for a rejection or suspension.
    pub reason: Option<String>,
    /// When a suspension ends by itself.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub suspended_until: Option<OffsetDateTime>,
    /// Student number.
    pub student_no: Option<String>,
    /// The student-card photo (an upload id).
    #[schema(value_type = Option<String>)]
    pub card_photo: Option<UploadId>,
    /// When they (last) applied.
    #[serde(with = "time::serde::rfc3339")]
    pub applied_at: OffsetDateTime,
    /// WeChat's content check wants an operator to look at the name (or
    /// could not check it).
    pub name_flagged: bool,
}

struct Waiting {
    place: usize,
    dropoff: usize,
    customer: OpenId,
    since: OffsetDateTime,
    ready_at: OffsetDateTime,
    /// Couriers who gave it back.
    declined: Vec<OpenId>,
}

struct Present {
    place: usize,
    /// Said online and not offline since.
    online: bool,
    /// The last online or location call.
    last_seen: Instant,
    /// When they said offline.
    offline_at: Option<Instant>,
}

/// An open task of a courier, as the dispatcher keeps it.
#[derive(Debug, Clone, Copy)]
struct Task {
    status: Status,
    pickup: usize,
    dropoff: usize,
    ready_at: OffsetDateTime,
    /// When click-to-door started (payment, when this dispatcher saw it).
    placed: OffsetDateTime,
}

/// What one planning round gives the planner, and the handles to map its
/// decisions back: order key → id, courier key → openid.
#[derive(Default)]
struct RoundInput {
    orders: Vec<planner::Order>,
    /// Keys below this are waiting orders; the rest ride a bundle under way.
    waiting: usize,
    ids: Vec<OrderId>,
    couriers: Vec<planner::Courier>,
    en_route: Vec<planner::EnRoute>,
    who: Vec<OpenId>,
}

/// Who someone is as the planner's owner tag (a courier never carries
/// their own order; the shard refuses it anyway).
fn owner_of(who: &OpenId) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    who.as_str().hash(&mut hasher);
    hasher.finish()
}

/// A stop of a courier's route, as the task list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouteStop {
    /// The order.
    pub order_id: OrderId,
    /// `pickup` or `dropoff`.
    #[schema(value_type = String, pattern = "^(pickup|dropoff)$")]
    pub action: &'static str,
    /// Where.
    pub place_id: String,
    /// When it is planned (a pickup never before the order's `ready_at`).
    #[serde(with = "time::serde::rfc3339")]
    pub eta: OffsetDateTime,
}

/// Why a task left a courier before it was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// The customer cancelled it.
    Cancelled,
    /// It went back to the pool (the courier was offline too long).
    Reassigned,
}

/// A task taken away from a courier, as their task list tells them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Withdrawn {
    /// The order.
    pub order_id: OrderId,
    /// Why.
    pub reason: WithdrawReason,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A courier's task list: open tasks and recently withdrawn ones.
#[derive(Debug, Clone)]
pub struct TaskList {
    /// Assigned or picked up, oldest first.
    pub open: Vec<OrderId>,
    /// The stops still to make, in order, with predicted times.
    pub route: Vec<RouteStop>,
    /// Taken away within the last hour, newest first.
    pub withdrawn: Vec<Withdrawn>,
}

/// The actor.
pub struct Dispatcher {
    store: CourierRepo,
    orders: Orders,
    campus: Arc<Campus>,
    places: HashMap<String, usize>,
    /// Each place (by index) as a planner point.
    points: Vec<Point>,
    config: DispatchConfig,
    couriers: HashMap<OpenId, Present>,
    /// Open tasks (assigned or picked up) per courier, with their status.
    tasks: HashMap<OpenId, HashMap<OrderId, Task>>,
    /// Assignments asked of a shard and not yet answered, per courier.
    reserved: HashMap<OpenId, u32>,
    withdrawn: HashMap<OpenId, Vec<(Instant, Withdrawn)>>,
    waiting: HashMap<OrderId, Waiting>,
    /// Paid orders whose places left the campus map: shown, never planned.
    stranded: HashMap<OrderId, BoardWaiting>,
    in_flight: HashSet<OrderId>,
    /// In-flight orders that came back to the pool before their assignment
    /// was answered (given back, or taken back, in between): the answer must
    /// not book them again.
    returned: HashSet<OrderId>,
    /// Tasks being taken back from an absent courier.
    unassigning: HashSet<OrderId>,
    /// Since when this dispatcher runs: an absent courier is offline since.
    started_at: Instant,
    /// Give-backs asked of a shard and not yet answered, per courier
    /// (counted against the daily limit while in flight).
    releasing: HashMap<OpenId, u32>,
    /// A round is due as soon as the mailbox is drained: a burst of new
    /// orders or couriers costs one round, not one each.
    round_pending: bool,
}

/// Become a courier (or update the profile).
#[derive(Message)]
#[rtype(result = "Result<CourierView, DispatchError>")]
pub struct Register {
    /// What they send.
    pub application: Application,
}

/// An operator's decision about a courier; the answer says whether it
/// changed anything. A courier barred by it is taken offline and loses
/// the tasks not yet picked up before the answer.
#[derive(Message)]
#[rtype(result = "Result<(CourierView, bool), DispatchError>")]
pub struct Decide {
    /// Who.
    pub courier: OpenId,
    /// What.
    pub decision: Decision,
    /// The operator deciding.
    pub operator: OperatorName,
}

/// A courier gives back an order they have not picked up: it goes back
/// to dispatch, never to them again.
#[derive(Message)]
#[rtype(result = "Result<Order, DispatchError>")]
pub struct Release {
    /// The order.
    pub id: OrderId,
    /// Who gives it back.
    pub courier: OpenId,
    /// Why (kept in the history).
    pub reason: String,
}

/// Every courier, or those in one review state, oldest application first.
#[derive(Message)]
#[rtype(result = "Result<Vec<CourierView>, DispatchError>")]
pub struct ListCouriers {
    /// Only this state.
    pub review: Option<Review>,
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

/// An online courier takes an open order (first one wins), or an
/// operator hands an order to one.
#[derive(Message)]
#[rtype(result = "Result<Order, DispatchError>")]
pub struct Grab {
    /// The order.
    pub id: OrderId,
    /// The courier.
    pub courier: OpenId,
    /// The operator, when it is their reassignment (the order may then be
    /// taken from another courier who has not picked it up).
    pub operator: Option<OperatorName>,
}

/// An operator takes a courier offline; their open orders note it. The
/// answer says whether anything changed (an offline courier stays as is).
#[derive(Message)]
#[rtype(result = "Result<(CourierView, bool), DispatchError>")]
pub struct ForceOffline {
    /// Who.
    pub courier: OpenId,
    /// The operator.
    pub operator: OperatorName,
}

/// What the operator console shows of the dispatcher.
#[derive(Message)]
#[rtype(result = "Board")]
pub struct GetBoard;

/// Every courier the dispatcher knows, with their routes, and the orders
/// waiting for one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Board {
    /// Registered couriers who were seen since the start, online first.
    pub couriers: Vec<BoardCourier>,
    /// Paid orders nobody has yet, oldest first.
    pub waiting: Vec<BoardWaiting>,
}

/// A courier on the board.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardCourier {
    /// Name, phone, presence, place, open tasks.
    #[serde(flatten)]
    pub courier: CourierView,
    /// The stops still to make, in order, with predicted times.
    pub route: Vec<RouteStop>,
}

/// An order waiting for a courier.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BoardWaiting {
    /// The order.
    pub order_id: OrderId,
    /// Where it is picked up.
    pub pickup: String,
    /// Where it goes.
    pub dropoff: String,
    /// Since when it waits.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// False when its pickup or drop-off is no longer on the campus map
    /// (the map changed after it was paid): no courier can be sent, and it
    /// waits for an operator to refund it.
    pub on_map: bool,
}

/// A courier's tasks (403 for a user who is not a courier).
#[derive(Message)]
#[rtype(result = "Result<TaskList, DispatchError>")]
pub struct TasksOf {
    /// Who asks.
    pub courier: OpenId,
}

/// When an order is predicted to be handed over by its courier.
#[derive(Message)]
#[rtype(result = "Option<OffsetDateTime>")]
pub struct EtaOf {
    /// The order.
    pub id: OrderId,
    /// Its courier.
    pub courier: OpenId,
}

/// A courier's name and phone, for the customer whose order they carry.
#[derive(Message)]
#[rtype(result = "Option<(String, crate::domain::PhoneNumber)>")]
pub struct ContactOf {
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
        self.started_at = Instant::now();
        self.rebuild();
        ctx.run_interval(self.config.tick, |act, ctx| act.round(ctx));
        let check = (self.config.reassign_after.min(self.config.presence_ttl) / 2)
            .clamp(Duration::from_millis(100), REASSIGN_CHECK_EVERY);
        ctx.run_interval(check, |act, _| {
            act.reassign_stale();
            act.publish();
        });
    }
}

impl Supervised for Dispatcher {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!("dispatcher restarting");
        self.in_flight.clear();
        self.returned.clear();
        self.reserved.clear();
        self.unassigning.clear();
    }
}

impl Dispatcher {
    /// Forgets waiting orders and tasks and asks the shards to tell them
    /// again (their owners; this actor never reads their storage).
    fn rebuild(&mut self) {
        self.waiting.clear();
        self.stranded.clear();
        self.tasks.clear();
        self.orders.retell_active();
        self.publish();
    }

    fn add_waiting(&mut self, msg: OrderWaiting) {
        if self.in_flight.contains(&msg.id) {
            self.returned.insert(msg.id.clone());
        }
        let place = self.places.get(msg.pickup.as_str()).copied();
        let dropoff = self.places.get(msg.dropoff.as_str()).copied();
        let (Some(place), Some(dropoff)) = (place, dropoff) else {
            // Never planned, but never dropped either: the board shows it
            // so an operator can refund it.
            tracing::warn!(order = %msg.id, pickup = msg.pickup.as_str(), dropoff = msg.dropoff.as_str(),
                "a paid order's places are not on the campus map; it waits for an operator");
            self.stranded.insert(
                msg.id.clone(),
                BoardWaiting {
                    order_id: msg.id,
                    pickup: msg.pickup.as_str().to_owned(),
                    dropoff: msg.dropoff.as_str().to_owned(),
                    since: msg.since,
                    on_map: false,
                },
            );
            return;
        };
        self.waiting.insert(
            msg.id,
            Waiting {
                place,
                dropoff,
                customer: msg.customer,
                since: msg.since,
                ready_at: msg.ready_at,
                declined: msg.declined,
            },
        );
    }

    /// Online now: said so, and seen within `presence_ttl`.
    fn is_online(&self, courier: &OpenId) -> bool {
        self.couriers
            .get(courier)
            .is_some_and(|p| p.online && p.last_seen.elapsed() < self.config.presence_ttl)
    }

    /// Marks an online courier offline from now (one whose presence already
    /// expired stays offline since it expired).
    fn go_offline(&mut self, courier: &OpenId) {
        if self.is_online(courier) {
            if let Some(p) = self.couriers.get_mut(courier) {
                p.online = false;
                p.offline_at = Some(Instant::now());
            }
        }
    }

    /// Since when a courier counts as offline (None while online).
    fn offline_since(&self, courier: &OpenId) -> Option<Instant> {
        match self.couriers.get(courier) {
            _ if self.is_online(courier) => None,
            Some(p) if p.online => Some(p.last_seen + self.config.presence_ttl),
            Some(p) => Some(p.offline_at.unwrap_or(self.started_at)),
            None => Some(self.started_at),
        }
    }

    fn open_tasks(&self, courier: &OpenId) -> u32 {
        let open = self.tasks.get(courier).map_or(0, HashMap::len) as u32;
        open + self.reserved.get(courier).copied().unwrap_or(0)
    }

    fn publish(&self) {
        metrics::gauge!("lastmile_dispatch_orders_waiting").set(self.waiting.len() as f64);
        let online = self.couriers.keys().filter(|c| self.is_online(c)).count();
        metrics::gauge!("lastmile_dispatch_couriers_online").set(online as f64);
    }

    /// What the operator console shows: every courier seen since the start
    /// or holding tasks, with their route, and the waiting orders.
    fn board(&self) -> Board {
        let now = now_utc();
        let mut seen: Vec<&OpenId> = self.couriers.keys().chain(self.tasks.keys()).collect();
        seen.sort();
        seen.dedup();
        let mut couriers: Vec<BoardCourier> = seen
            .into_iter()
            .filter_map(|id| self.profile(id).ok())
            .map(|profile| {
                let route = self.route_of(&profile.openid, now);
                BoardCourier {
                    courier: self.view(profile),
                    route,
                }
            })
            .collect();
        couriers.sort_by(|a, b| {
            b.courier
                .online
                .cmp(&a.courier.online)
                .then(a.courier.name.cmp(&b.courier.name))
        });
        let places = self.campus.places();
        let mut waiting: Vec<BoardWaiting> = self
            .waiting
            .iter()
            .map(|(id, w)| BoardWaiting {
                order_id: id.clone(),
                pickup: places[w.place].id.clone(),
                dropoff: places[w.dropoff].id.clone(),
                since: w.since,
                on_map: true,
            })
            .chain(self.stranded.values().cloned())
            .collect();
        waiting.sort_by(|a, b| a.since.cmp(&b.since).then(a.order_id.cmp(&b.order_id)));
        Board { couriers, waiting }
    }

    fn free_slots(&self, courier: &OpenId) -> u32 {
        self.config
            .max_tasks
            .saturating_sub(self.open_tasks(courier))
    }

    fn view(&self, profile: CourierProfile) -> CourierView {
        let present = self.couriers.get(&profile.openid);
        let review = profile.review_at(now_utc());
        let suspended = review == Review::Suspended;
        CourierView {
            online: self.is_online(&profile.openid),
            place_id: present.map(|p| self.campus.places()[p.place].id.clone()),
            open_tasks: self.tasks.get(&profile.openid).map_or(0, HashMap::len) as u32,
            openid: profile.openid,
            name: profile.name,
            phone: profile.phone,
            review,
            reason: matches!(review, Review::Rejected | Review::Suspended)
                .then_some(profile.reason)
                .flatten(),
            suspended_until: profile.suspended_until.filter(|_| suspended),
            student_no: profile.student_no,
            card_photo: profile.card_photo,
            applied_at: profile.applied_at,
            name_flagged: profile.name_flagged,
        }
    }

    /// The profile of a courier who may work now (else Forbidden naming
    /// the review state).
    fn worker(&self, courier: &OpenId) -> Result<CourierProfile, DispatchError> {
        let profile = self.profile(courier)?;
        profile
            .may_work(now_utc())
            .map_err(DispatchError::Forbidden)?;
        Ok(profile)
    }

    /// Whether a courier holding tasks may keep them (a profile that cannot
    /// be read keeps them: storage trouble is no verdict).
    fn barred(&self, courier: &OpenId) -> bool {
        matches!(
            self.store.get_courier(courier),
            Ok(Some(p)) if p.may_work(now_utc()).is_err()
        )
    }

    /// Gives back at once the tasks a courier has not picked up.
    fn take_back(&mut self, courier: &OpenId) -> Vec<OrderId> {
        let ids: Vec<OrderId> = self
            .tasks
            .get(courier)
            .into_iter()
            .flat_map(|t| t.iter())
            .filter(|(id, task)| task.status == Status::Assigned && !self.unassigning.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        self.unassigning.extend(ids.iter().cloned());
        ids
    }

    fn profile(&self, courier: &OpenId) -> Result<CourierProfile, DispatchError> {
        self.store
            .get_courier(courier)
            .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?
            .ok_or(DispatchError::Forbidden(
                "become a courier first (POST /api/v1/couriers/me)",
            ))
    }

    /// A round before the tick, for a paid order on an idle system or a
    /// courier who just came online: once the messages already waiting are
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

    /// One planning round: the planner sees every waiting order and every
    /// online courier (idle, on the way to a pickup, or busy until the end
    /// of their route) and its decisions are asked of the owning shards.
    fn round(&mut self, ctx: &mut Context<Self>) {
        if !self.config.auto || self.waiting.is_empty() {
            return;
        }
        let started = Instant::now();
        let now = now_utc();
        let mut input = self.round_input(now);
        if input.orders.is_empty() || input.couriers.is_empty() {
            return;
        }
        let plan = planner::plan_with(
            &self.params(),
            0.0,
            &input.orders,
            &input.couriers,
            &mut input.en_route,
        );
        metrics::histogram!("lastmile_dispatch_round_seconds")
            .record(started.elapsed().as_secs_f64());
        let tick = self.config.tick.as_secs_f64() / 60.0;
        for joined in &plan.extensions {
            self.send(ctx, &input, joined, now);
        }
        for sent in &plan.assignments {
            // On campus the courier's time is cheap and the food's is not:
            // nobody is sent to stand at a pickup before it is ready.
            let ready = sent
                .orders
                .iter()
                .map(|&k| input.orders[k].ready)
                .fold(f64::MIN, f64::max);
            if sent.arrive + tick < ready {
                continue;
            }
            metrics::histogram!("lastmile_dispatch_round_distance_metres")
                .record((sent.arrive - sent.depart) * self.config.speed);
            self.send(ctx, &input, sent, now);
        }
    }

    /// Asks the shards to assign the orders of `a` that are still waiting
    /// (an extension also lists the orders the courier already has).
    fn send(
        &mut self,
        ctx: &mut Context<Self>,
        input: &RoundInput,
        a: &planner::Assignment,
        now: OffsetDateTime,
    ) {
        for &key in a.orders.iter().filter(|&&k| k < input.waiting) {
            let id = input.ids[key].clone();
            let courier = input.who[a.courier].clone();
            let waited = self
                .waiting
                .get(&id)
                .map(|w| (now - w.since).unsigned_abs());
            self.reserve(&id, &courier);
            let (orders, addr) = (self.orders.clone(), ctx.address());
            actix::spawn(async move {
                let result = orders
                    .assign(id.clone(), courier.clone(), ChangedBy::Dispatcher, false)
                    .await
                    .map(|_| ());
                addr.do_send(Settled {
                    id,
                    courier,
                    result,
                    waited,
                });
            });
        }
    }

    /// The planner's view of now: waiting orders first (keys below
    /// `waiting`), then the orders of bundles under way; online couriers
    /// without an assignment in flight.
    fn round_input(&self, now: OffsetDateTime) -> RoundInput {
        let minutes = |t: OffsetDateTime| (t - now).as_seconds_f64() / 60.0;
        let mut ids: Vec<OrderId> = self
            .waiting
            .keys()
            .filter(|id| !self.in_flight.contains(*id))
            .cloned()
            .collect();
        ids.sort();
        let mut input = RoundInput {
            waiting: ids.len(),
            ..RoundInput::default()
        };
        for id in ids {
            let w = &self.waiting[&id];
            let key = input.ids.len();
            input.orders.push(planner::Order {
                key,
                site: w.place as u32,
                pickup: self.points[w.place],
                dropoff: self.points[w.dropoff],
                placed: minutes(w.since),
                ready: minutes(w.ready_at),
                owner: Some(owner_of(&w.customer)),
                barred: w.declined.iter().map(owner_of).collect(),
            });
            input.ids.push(id);
        }
        let mut online: Vec<&OpenId> = self
            .couriers
            .keys()
            .filter(|c| self.is_online(c) && self.reserved.get(*c).is_none_or(|&n| n == 0))
            .collect();
        online.sort();
        for courier in online {
            self.add_courier(&mut input, courier, now);
        }
        input
    }

    /// A courier as the planner sees them: free now at their place, or
    /// free where and when their route ends — and, when all they hold is
    /// still to be picked up at one place, a bundle later orders may join.
    fn add_courier(&self, input: &mut RoundInput, courier: &OpenId, now: OffsetDateTime) {
        let minutes = |t: OffsetDateTime| (t - now).as_seconds_f64() / 60.0;
        let Some(present) = self.couriers.get(courier) else {
            return;
        };
        let key = input.who.len();
        input.who.push(courier.clone());
        let here = self.points[present.place];
        let owner = Some(owner_of(courier));
        let tasks = self.tasks.get(courier).filter(|t| !t.is_empty());
        let (pos, free_at) = match tasks {
            None => (here, 0.0),
            Some(_) => self
                .route_of(courier, now)
                .last()
                .map_or((here, 0.0), |stop| {
                    let place = self.places.get(&stop.place_id).copied();
                    let place = place.unwrap_or(present.place);
                    let end = minutes(stop.eta) + self.params().dropoff_service / 2.0;
                    (self.points[place], end.max(0.0))
                }),
        };
        input.couriers.push(planner::Courier {
            key,
            pos,
            free_at,
            off_time: f64::INFINITY,
            capacity: self.config.max_tasks as usize,
            owner,
        });
        let Some(tasks) = tasks else {
            return;
        };
        let site = tasks.values().next().map(|t| t.pickup);
        let one_pickup = tasks
            .values()
            .all(|t| t.status == Status::Assigned && Some(t.pickup) == site);
        let Some(site) = site.filter(|_| one_pickup) else {
            return;
        };
        let p = self.params();
        let pickup = self.points[site];
        let arrive = p.travel(here, pickup);
        let mut ids: Vec<&OrderId> = tasks.keys().collect();
        ids.sort();
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            let t = &tasks[id];
            orders.push(planner::Order {
                key: input.ids.len(),
                site: site as u32,
                pickup,
                dropoff: self.points[t.dropoff],
                placed: minutes(t.placed),
                ready: minutes(t.ready_at),
                owner: None,
                barred: Vec::new(),
            });
            input.ids.push(id.clone());
        }
        let ready = orders.iter().map(|o| o.ready).fold(f64::MIN, f64::max);
        input.en_route.push(planner::EnRoute {
            courier: key,
            site: site as u32,
            pickup,
            depart: 0.0,
            arrive,
            pickup_at: (arrive + p.pickup_service / 2.0).max(ready),
            orders,
            capacity: self.config.max_tasks as usize,
            off_time: f64::INFINITY,
            owner,
        });
    }

    fn reserve(&mut self, id: &OrderId, courier: &OpenId) {
        *self.reserved.entry(courier.clone()).or_default() += 1;
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
        let came_back = self.returned.remove(id);
        if let Some(n) = self.reserved.get_mut(courier) {
            *n = n.saturating_sub(1);
        }
        match failure {
            // Assigned, then back in the pool before this answer: the
            // shard's events already said so, and they are the later word.
            None if came_back => {}
            None => {
                // The shard's TaskChanged says the same; booking it here too
                // keeps capacity right for the next round in between.
                if let Some(w) = self.waiting.remove(id) {
                    self.tasks
                        .entry(courier.clone())
                        .or_default()
                        .entry(id.clone())
                        .or_insert(Task {
                            status: Status::Assigned,
                            pickup: w.place,
                            dropoff: w.dropoff,
                            ready_at: w.ready_at,
                            placed: w.since,
                        });
                }
                if let Some(w) = waited {
                    metrics::histogram!("lastmile_dispatch_assignment_latency_seconds")
                        .record(w.as_secs_f64());
                }
                // Suspended while this assignment was on its way: it goes
                // back like the rest of their untouched tasks.
                if self.barred(courier) {
                    let ids = self.take_back(courier);
                    self.unassign_all(ids, courier.clone());
                }
            }
            Some(e) => {
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

    /// Asks the shards to take tasks back from a courier.
    fn unassign_all(&self, ids: Vec<OrderId>, courier: OpenId) {
        for id in ids {
            let (orders, courier) = (self.orders.clone(), courier.clone());
            actix::spawn(async move {
                if let Err(e) = orders
                    .unassign(id.clone(), courier, ChangedBy::Dispatcher)
                    .await
                {
                    tracing::warn!(order = %id, error = %e, "could not take a task back");
                }
            });
        }
    }

    /// Couriers offline (or silent) longer than `reassign_after`, and
    /// couriers barred from working (a suspension a crash interrupted, or
    /// one that raced an assignment), give back the tasks they have not
    /// picked up.
    fn reassign_stale(&mut self) {
        let stale: Vec<(OrderId, OpenId)> = self
            .tasks
            .iter()
            .filter(|(courier, _)| {
                self.offline_since(courier)
                    .is_some_and(|t| t.elapsed() >= self.config.reassign_after)
                    || self.barred(courier)
            })
            .flat_map(|(courier, tasks)| {
                tasks
                    .iter()
                    .filter(|(_, task)| task.status == Status::Assigned)
                    .map(move |(id, _)| (id.clone(), courier.clone()))
            })
            .filter(|(id, _)| !self.unassigning.contains(id))
            .collect();
        for (id, courier) in stale {
            self.unassigning.insert(id.clone());
            let orders = self.orders.clone();
            actix::spawn(async move {
                if let Err(e) = orders
                    .unassign(id.clone(), courier, ChangedBy::Dispatcher)
                    .await
                {
                    tracing::warn!(order = %id, error = %e, "could not take a task back");
                }
            });
        }
    }

    /// Books a shard's news about a task.
    fn task_changed(
        &mut self,
        TaskChanged {
            id,
            courier,
            status,
            pickup,
            dropoff,
            ready_at,
            placed,
        }: TaskChanged,
    ) {
        let open = matches!(status, Status::Assigned | Status::PickedUp);
        let places = (
            self.places.get(pickup.as_str()).copied(),
            self.places.get(dropoff.as_str()).copied(),
        );
        let tasks = self.tasks.entry(courier.clone()).or_default();
        let was_open = if let (true, (Some(pickup), Some(dropoff))) = (open, places) {
            // The payment time this dispatcher saw beats the creation time.
            let placed = tasks.get(&id).map_or(placed, |t| t.placed);
            tasks.insert(
                id.clone(),
                Task {
                    status,
                    pickup,
                    dropoff,
                    ready_at,
                    placed,
                },
            );
            false
        } else {
            tasks.remove(&id).is_some()
        };
        if tasks.is_empty() {
            self.tasks.remove(&courier);
        }
        if !open {
            self.unassigning.remove(&id);
        }
        let reason = match status {
            Status::Paid => Some(WithdrawReason::Reassigned),
            Status::Refunding | Status::Cancelled | Status::Refunded => {
                Some(WithdrawReason::Cancelled)
            }
            _ => None,
        };
        if let (true, Some(reason)) = (was_open, reason) {
            let list = self.withdrawn.entry(courier).or_default();
            list.retain(|(at, _)| at.elapsed() < WITHDRAWN_SHOWN_FOR);
            list.push((
                Instant::now(),
                Withdrawn {
                    order_id: id,
                    reason,
                    at: now_utc(),
                },
            ));
            if list.len() > WITHDRAWN_SHOWN_MAX {
                list.remove(0);
            }
        }
    }

    /// The planner's parameters for the campus.
    fn params(&self) -> Params {
        Params {
            speed: self.config.speed,
            whole_minutes: false,
            pickup_service: self.config.pickup_service.as_secs_f64() / 60.0,
            dropoff_service: self.config.dropoff_service.as_secs_f64() / 60.0,
            target: self.config.target.as_secs_f64() / 60.0,
            max: self.config.max.as_secs_f64() / 60.0,
            max_is_hard: false,
            max_bundle: self.config.max_tasks as usize,
        }
    }

    /// A courier's remaining stops with predicted times, from where they
    /// are (or their first pickup when the dispatcher has not seen them).
    fn route_of(&self, courier: &OpenId, now: OffsetDateTime) -> Vec<RouteStop> {
        let Some(tasks) = self.tasks.get(courier) else {
            return Vec::new();
        };
        let mut ids: Vec<&OrderId> = tasks.keys().collect();
        ids.sort();
        let point = |i: usize| self.points[i];
        let minutes = |t: OffsetDateTime| (t - now).as_seconds_f64() / 60.0;
        let plan_tasks: Vec<RouteTask> = ids
            .iter()
            .enumerate()
            .map(|(key, id)| {
                let t = &tasks[*id];
                RouteTask {
                    key,
                    pickup: (t.status == Status::Assigned)
                        .then(|| (point(t.pickup), minutes(t.ready_at))),
                    dropoff: point(t.dropoff),
                }
            })
            .collect();
        let start = self
            .couriers
            .get(courier)
            .map(|p| p.place)
            .or_else(|| ids.first().map(|id| tasks[*id].pickup))
            .map_or(Point { x: 0.0, y: 0.0 }, point);
        planner::route(&self.params(), 0.0, start, &plan_tasks)
            .into_iter()
            .map(|stop| {
                let id = ids[stop.key];
                let task = &tasks[id];
                let place = if stop.pickup {
                    task.pickup
                } else {
                    task.dropoff
                };
                RouteStop {
                    order_id: id.clone(),
                    action: if stop.pickup { "pickup" } else { "dropoff" },
                    place_id: self.campus.places()[place].id.clone(),
                    eta: now + Duration::from_secs_f64(stop.at.max(0.0) * 60.0),
                }
            })
            .collect()
    }

    fn task_list(&self, courier: &OpenId) -> TaskList {
        let mut open: Vec<OrderId> = self
            .tasks
            .get(courier)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        // Order ids sort by creation time.
        open.sort();
        let withdrawn = self
            .withdrawn
            .get(courier)
            .map(|list| {
                list.iter()
                    .rev()
                    .filter(|(at, _)| at.elapsed() < WITHDRAWN_SHOWN_FOR)
                    .map(|(_, w)| w.clone())
                    .collect()
            })
            .unwrap_or_default();
        TaskList {
            open,
            route: self.route_of(courier, now_utc()),
            withdrawn,
        }
    }
}

impl Handler<Register> for Dispatcher {
    type Result = ResponseFuture<Result<CourierView, DispatchError>>;

    fn handle(
        &mut self,
        Register { application }: Register,
        _: &mut Self::Context,
    ) -> Self::Result {
        let existing = match self.store.get_courier(&application.openid) {
            Ok(existing) => existing,
            Err(e) => {
                let e = DispatchError::Unavailable(crate::errors::cause(e));
                return Box::pin(async move { Err(e) });
            }
        };
        let profile = CourierProfile::apply(existing, application, self.config.review, now_utc());
        let stored = self.store.put_courier(&profile);
        // New papers send an approved courier back to review: off duty
        // until an operator looks again.
        if stored.is_ok() && profile.may_work(now_utc()).is_err() && self.is_online(&profile.openid)
        {
            self.go_offline(&profile.openid);
            let ids = self.take_back(&profile.openid);
            self.unassign_all(ids, profile.openid.clone());
            self.publish();
        }
        let view = self.view(profile);
        let store = self.store.clone();
        Box::pin(async move {
            stored.map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
            store
                .commit()
                .await
                .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
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
        let profile = match presence {
            Presence::Online(_) => self.worker(&courier)?,
            _ => self.profile(&courier)?,
        };
        let place_of =
            |p: &PlaceId, places: &HashMap<String, usize>| places.get(p.as_str()).copied();
        match presence {
            Presence::Online(place) => {
                let place = place_of(&place, &self.places).ok_or(DispatchError::NotFound)?;
                let already = self.is_online(&courier);
                self.couriers.insert(
                    courier,
                    Present {
                        place,
                        online: true,
                        last_seen: Instant::now(),
                        offline_at: None,
                    },
                );
                // A courier who just came online: match now, not at the next
                // tick. Another /online of one who is on is only a refresh.
                if !already {
                    self.round_soon(ctx);
                }
            }
            Presence::Offline => self.go_offline(&courier),
            Presence::At(place) => {
                let place = place_of(&place, &self.places).ok_or(DispatchError::NotFound)?;
                // A location refreshes an online courier's presence; it
                // never brings an offline (or expired) one back online.
                let online = self.is_online(&courier);
                let since = self.offline_since(&courier);
                let entry = self.couriers.entry(courier).or_insert(Present {
                    place,
                    online: false,
                    last_seen: Instant::now(),
                    offline_at: since,
                });
                entry.place = place;
                if online {
                    entry.last_seen = Instant::now();
                } else if entry.online {
                    entry.online = false;
                    entry.offline_at = since;
                }
            }
        }
        self.publish();
        Ok(self.view(profile))
    }
}

impl Handler<Grab> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<Order, DispatchError>>;

    fn handle(
        &mut self,
        Grab {
            id,
            courier,
            operator,
        }: Grab,
        _: &mut Self::Context,
    ) -> Self::Result {
        let checked = (|| {
            match self.profile(&courier) {
                // The operator named a courier who does not exist; a user
                // grabbing is simply not a courier yet.
                Err(DispatchError::Forbidden(_)) if operator.is_some() => {
                    return Err(DispatchError::UnknownCourier)
                }
                other => other?,
            };
            self.worker(&courier)?;
            if !self.is_online(&courier) {
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
            let gave_back = self
                .waiting
                .get(&id)
                .is_some_and(|w| w.declined.contains(&courier));
            if gave_back && operator.is_none() {
                return Err(DispatchError::Conflict(
                    "you gave this order back; it goes to another courier".into(),
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
            async move {
                let take_over = operator.is_some();
                let by = match operator {
                    Some(name) => ChangedBy::Operator(Some(name)),
                    None => ChangedBy::Courier(courier.clone()),
                };
                orders.assign(id, courier, by, take_over).await
            }
            .into_actor(self)
            .map(move |result, act, _| {
                act.settle(&sid, &scourier, result.as_ref().err(), None);
                result.map_err(DispatchError::from)
            }),
        )
    }
}

impl Handler<ForceOffline> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<(CourierView, bool), DispatchError>>;

    fn handle(
        &mut self,
        ForceOffline { courier, operator }: ForceOffline,
        _: &mut Self::Context,
    ) -> Self::Result {
        let profile = match self.profile(&courier) {
            Ok(p) => p,
            // An operator named someone who is not a courier.
            Err(DispatchError::Forbidden(_)) => {
                return Box::pin(async { Err(DispatchError::UnknownCourier) }.into_actor(self))
            }
            Err(e) => return Box::pin(async move { Err(e) }.into_actor(self)),
        };
        if !self.is_online(&courier) {
            let view = self.view(profile);
            return Box::pin(async move { Ok((view, false)) }.into_actor(self));
        }
        self.go_offline(&courier);
        self.publish();
        let open: Vec<OrderId> = self
            .tasks
            .get(&courier)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let orders = self.orders.clone();
        let note = format!("operator set courier {} ({courier}) offline", profile.name);
        Box::pin(
            async move {
                for id in open {
                    if let Err(e) = orders
                        .add_note(
                            id.clone(),
                            ChangedBy::Operator(Some(operator.clone())),
                            note.clone(),
                        )
                        .await
                    {
                        tracing::warn!(order = %id, error = %e, "could not note a forced offline");
                    }
                }
            }
            .into_actor(self)
            .map(move |(), act, _| Ok((act.view(profile), true))),
        )
    }
}

impl Handler<Decide> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<(CourierView, bool), DispatchError>>;

    fn handle(
        &mut self,
        Decide {
            courier,
            decision,
            operator,
        }: Decide,
        _: &mut Self::Context,
    ) -> Self::Result {
        let decided = (|| {
            let mut profile = match self.profile(&courier) {
                Err(DispatchError::Forbidden(_)) => return Err(DispatchError::UnknownCourier),
                other => other?,
            };
            let changed = profile
                .decide(decision, now_utc())
                .map_err(|m| DispatchError::Conflict(m.into()))?;
            if changed {
                self.store
                    .put_courier(&profile)
                    .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
            }
            Ok((profile, changed))
        })();
        let (profile, changed) = match decided {
            Ok(d) => d,
            Err(e) => return Box::pin(async move { Err(e) }.into_actor(self)),
        };
        let barred = profile.may_work(now_utc()).is_err();
        let give_back = if changed && barred {
            self.go_offline(&courier);
            self.publish();
            self.take_back(&courier)
        } else {
            Vec::new()
        };
        let (store, orders, who) = (self.store.clone(), self.orders.clone(), courier.clone());
        Box::pin(
            async move {
                store
                    .commit()
                    .await
                    .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
                // Durable first: a crash from here on is finished by
                // reassign_stale, which takes tasks from barred couriers.
                for id in give_back {
                    if let Err(e) = orders
                        .unassign(
                            id.clone(),
                            who.clone(),
                            ChangedBy::Operator(Some(operator.clone())),
                        )
                        .await
                    {
                        tracing::warn!(order = %id, error = %e, "could not take a task back");
                    }
                }
                Ok(())
            }
            .into_actor(self)
            .map(move |done: Result<(), DispatchError>, act, _| {
                done?;
                Ok((act.view(profile), changed))
            }),
        )
    }
}

impl Handler<Release> for Dispatcher {
    type Result = ResponseActFuture<Self, Result<Order, DispatchError>>;

    fn handle(
        &mut self,
        Release {
            id,
            courier,
            reason,
        }: Release,
        _: &mut Self::Context,
    ) -> Self::Result {
        let day = china_day(now_utc());
        let checked = (|| {
            self.profile(&courier)?;
            let given = self
                .store
                .releases_on(&courier, &day)
                .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
            let in_flight = self.releasing.get(&courier).copied().unwrap_or(0);
            if given + in_flight >= self.config.releases_per_day {
                return Err(DispatchError::Conflict(format!(
                    "a courier gives back at most {} orders a day",
                    self.config.releases_per_day
                )));
            }
            Ok(())
        })();
        if let Err(e) = checked {
            return Box::pin(async move { Err(e) }.into_actor(self));
        }
        *self.releasing.entry(courier.clone()).or_default() += 1;
        let (orders, store, who) = (self.orders.clone(), self.store.clone(), courier.clone());
        Box::pin(
            async move {
                let by = ChangedBy::Courier(who.clone());
                let order = orders
                    .unassign_noted(id, who.clone(), by, reason)
                    .await
                    .map_err(|e| match e {
                        // Not theirs to give back: they may not see it either.
                        OrderError::Forbidden(_) => DispatchError::NotFound,
                        other => DispatchError::from(other),
                    })?;
                store
                    .count_release(&who, &day)
                    .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
                store
                    .commit()
                    .await
                    .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
                Ok(order)
            }
            .into_actor(self)
            .map(move |result, act, _| {
                if let Some(n) = act.releasing.get_mut(&courier) {
                    *n = n.saturating_sub(1);
                }
                if result.is_ok() {
                    metrics::counter!("lastmile_dispatch_releases_total").increment(1);
                }
                result
            }),
        )
    }
}

/// The China (campus) day of a time, `YYYY-MM-DD`.
fn china_day(at: OffsetDateTime) -> String {
    at.to_offset(crate::domain::CHINA).date().to_string()
}

impl Handler<ListCouriers> for Dispatcher {
    type Result = Result<Vec<CourierView>, DispatchError>;

    fn handle(
        &mut self,
        ListCouriers { review }: ListCouriers,
        _: &mut Self::Context,
    ) -> Self::Result {
        let mut all = self
            .store
            .all_couriers()
            .map_err(|e| DispatchError::Unavailable(crate::errors::cause(e)))?;
        all.sort_by(|a, b| {
            a.applied_at
                .cmp(&b.applied_at)
                .then(a.openid.cmp(&b.openid))
        });
        let now = now_utc();
        Ok(all
            .into_iter()
            .filter(|p| review.is_none_or(|r| p.review_at(now) == r))
            .map(|p| self.view(p))
            .collect())
    }
}

impl Handler<GetBoard> for Dispatcher {
    type Result = MessageResult<GetBoard>;

    fn handle(&mut self, _: GetBoard, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.board())
    }
}

impl Handler<OpenOrders> for Dispatcher {
    type Result = Result<Vec<OrderId>, DispatchError>;

    fn handle(
        &mut self,
        OpenOrders { courier, near }: OpenOrders,
        _: &mut Self::Context,
    ) -> Self::Result {
        self.worker(&courier)?;
        if !self.is_online(&courier) {
            return Err(DispatchError::Forbidden(
                "open orders are for online couriers",
            ));
        }
        let from = *self
            .places
            .get(near.as_str())
            .ok_or(DispatchError::NotFound)?;
        let mut open: Vec<(f64, OffsetDateTime, &OrderId)> = self
            .waiting
            .iter()
            .filter(|(id, w)| {
                !self.in_flight.contains(*id)
                    && w.customer != courier
                    && !w.declined.contains(&courier)
            })
            .map(|(id, w)| {
                (
                    self.points[from].distance(self.points[w.place]),
                    w.since,
                    id,
                )
            })
            .collect();
        open.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
        Ok(open.into_iter().map(|(_, _, id)| id.clone()).collect())
    }
}

impl Handler<OrderEvent> for Dispatcher {
    type Result = ();

    fn handle(&mut self, event: OrderEvent, ctx: &mut Self::Context) {
        match event {
            OrderEvent::Waiting(waiting) => {
                let idle = self.waiting.is_empty();
                self.add_waiting(waiting);
                self.publish();
                if idle {
                    self.round_soon(ctx);
                }
            }
            OrderEvent::Taken(id) => {
                self.waiting.remove(&id);
                self.stranded.remove(&id);
                self.publish();
            }
            OrderEvent::Task(changed) => self.task_changed(changed),
            OrderEvent::PaymentDue(_)
            | OrderEvent::RefundDue(_)
            | OrderEvent::OutboxWritten
            | OrderEvent::MoneyWritten => {}
        }
    }
}

impl Handler<EtaOf> for Dispatcher {
    type Result = Option<OffsetDateTime>;

    fn handle(&mut self, EtaOf { id, courier }: EtaOf, _: &mut Self::Context) -> Self::Result {
        self.route_of(&courier, now_utc())
            .into_iter()
            .find(|s| s.order_id == id && s.action == "dropoff")
            .map(|s| s.eta)
    }
}

impl Handler<ContactOf> for Dispatcher {
    type Result = Option<(String, crate::domain::PhoneNumber)>;

    fn handle(&mut self, ContactOf { courier }: ContactOf, _: &mut Self::Context) -> Self::Result {
        self.profile(&courier).ok().map(|p| (p.name, p.phone))
    }
}

impl Handler<TasksOf> for Dispatcher {
    type Result = Result<TaskList, DispatchError>;

    fn handle(&mut self, TasksOf { courier }: TasksOf, _: &mut Self::Context) -> Self::Result {
        self.profile(&courier)?;
        Ok(self.task_list(&courier))
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

crate::supervise::inject_panic!(Dispatcher, "dispatcher", Dispatch);

impl Dispatch {
    /// Starts the supervised dispatcher; hand [`Dispatch::listener`] to the orders shards.
    pub fn start(
        store: CourierRepo,
        orders: Orders,
        campus: Arc<Campus>,
        config: DispatchConfig,
    ) -> Self {
        let places: HashMap<String, usize> = campus
            .places()
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let points: Vec<Point> = campus
            .places()
            .iter()
            .map(|p| Point { x: p.x, y: p.y })
            .collect();
        let addr = Supervisor::start(move |_| Dispatcher {
            store,
            orders,
            campus,
            places,
            points,
            config,
            couriers: HashMap::new(),
            tasks: HashMap::new(),
            reserved: HashMap::new(),
            withdrawn: HashMap::new(),
            waiting: HashMap::new(),
            stranded: HashMap::new(),
            in_flight: HashSet::new(),
            returned: HashSet::new(),
            unassigning: HashSet::new(),
            started_at: Instant::now(),
            releasing: HashMap::new(),
            round_pending: false,
        });
        Self { addr }
    }

    /// Registers (or updates) a courier.
    pub async fn register(&self, application: Application) -> Result<CourierView, DispatchError> {
        self.addr.send(Register { application }).await?
    }

    /// An operator's decision about a courier; true when it changed something.
    pub async fn decide(
        &self,
        courier: OpenId,
        decision: Decision,
        operator: OperatorName,
    ) -> Result<(CourierView, bool), DispatchError> {
        self.addr
            .send(Decide {
                courier,
                decision,
                operator,
            })
            .await?
    }

    /// A courier gives back an order they have not picked up.
    pub async fn release(
        &self,
        id: OrderId,
        courier: OpenId,
        reason: String,
    ) -> Result<Order, DispatchError> {
        self.addr
            .send(Release {
                id,
                courier,
                reason,
            })
            .await?
    }

    /// Couriers (in one review state), oldest application first.
    pub async fn couriers(
        &self,
        review: Option<Review>,
    ) -> Result<Vec<CourierView>, DispatchError> {
        self.addr.send(ListCouriers { review }).await?
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
        self.addr
            .send(Grab {
                id,
                courier,
                operator: None,
            })
            .await?
    }

    /// An operator hands an order (waiting, or assigned and not picked up)
    /// to an online courier with room.
    pub async fn reassign(
        &self,
        id: OrderId,
        courier: OpenId,
        operator: OperatorName,
    ) -> Result<Order, DispatchError> {
        self.addr
            .send(Grab {
                id,
                courier,
                operator: Some(operator),
            })
            .await?
    }

    /// An operator takes a courier offline; false when they were not online.
    pub async fn force_offline(
        &self,
        courier: OpenId,
        operator: OperatorName,
    ) -> Result<(CourierView, bool), DispatchError> {
        self.addr.send(ForceOffline { courier, operator }).await?
    }

    /// Couriers, routes and waiting orders, for the operator console.
    pub async fn board(&self) -> Result<Board, DispatchError> {
        Ok(self.addr.send(GetBoard).await?)
    }

    /// When `courier` is predicted to hand order `id` over (None when it is
    /// not their open task, or the dispatcher is unavailable).
    pub async fn eta_of(&self, id: OrderId, courier: OpenId) -> Option<OffsetDateTime> {
        self.addr.send(EtaOf { id, courier }).await.ok().flatten()
    }

    /// A courier's name and phone (None when unknown or unavailable).
    pub async fn contact_of(
        &self,
        courier: OpenId,
    ) -> Option<(String, crate::domain::PhoneNumber)> {
        self.addr.send(ContactOf { courier }).await.ok().flatten()
    }

    /// A courier's open and recently withdrawn tasks.
    pub async fn tasks_of(&self, courier: OpenId) -> Result<TaskList, DispatchError> {
        self.addr.send(TasksOf { courier }).await?
    }

    /// Open orders near a place, for an online courier.
    pub async fn open_orders(
        &self,
        courier: OpenId,
        near: PlaceId,
    ) -> Result<Vec<OrderId>, DispatchError> {
        self.addr.send(OpenOrders { courier, near }).await?
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
