//! Dispatch: one dispatcher actor per campus ([`dispatcher`], a thin shell
//! around the pure [`core`]), the courier registry that owns the profiles
//! ([`couriers`]) and the pure planner ([`planner`], with `assignment`'s
//! min-cost matching), which `research` replays public MDRP days through.
//!
//! A campus's dispatcher owns the set of couriers present there (place,
//! open tasks) and the pool of its paid orders waiting for one. Every
//! `dispatch.tick`, and at once when an order or a courier appears on an
//! idle campus, it hands the planner the waiting orders and the online
//! couriers — idle ones where they are, busy ones where and when their
//! route ends, and the bundles still to be picked up at one place, which
//! later orders may join — and asks the owning shards to assign what the
//! planner sends now. An order is assigned only when its shard accepts (and
//! only to a courier of its campus), so grabs, cancels and rounds can race
//! without double assignment. Grabs go through the campus too, so capacity
//! (`dispatch.max_tasks`, also the largest bundle) is checked in one place.
//!
//! Presence: a courier works on one campus at a time, online from an
//! online call until an offline call or until `dispatch.presence_ttl`
//! passes without an online or location call (an app that died goes
//! quiet). Each campus keeps an index of its couriers' open tasks, fed by
//! the shards' [`OrderEvent`]s (routed by the order's campus, and told
//! again whenever a dispatcher starts); tasks of a courier offline for
//! `dispatch.reassign_after` that are not picked up go back to the pool.
//! After a restart nobody is present, so offline time counts from the start.

pub(crate) mod assignment;
pub mod core;
mod couriers;
mod dispatcher;
pub mod planner;
mod views;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use dashmap::DashMap;
use time::OffsetDateTime;

use crate::campus::{Campus, Campuses};
use crate::domain::{
    now_utc, Application, CampusId, ChangedBy, CourierProfile, Decision, OpenId, OperatorName,
    Order, OrderId, PlaceId, Review,
};
use crate::orders::{CampusOf, OrderError, OrderEvent, Orders};
use crate::storage::CourierRepo;
use couriers::{Registry, RegistryConfig};
use dispatcher::{CampusDispatcher, Dispatcher};
use planner::Params;

pub use dispatcher::Presence;
pub use views::{
    Board, BoardCourier, BoardWaiting, CourierView, RouteStop, StopAction, TaskList,
    WithdrawReason, Withdrawn,
};

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
    /// A place that is not on the courier's campus (the message names the field).
    #[error("{0}")]
    Invalid(String),
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
            OrderError::Conflict(m) => DispatchError::Conflict(m.into()),
            other => DispatchError::Unavailable(crate::errors::cause(other)),
        }
    }
}

impl From<MailboxError> for DispatchError {
    fn from(e: MailboxError) -> Self {
        DispatchError::Unavailable(crate::errors::cause(e))
    }
}

/// What a user who is not a courier is told.
fn not_a_courier() -> DispatchError {
    DispatchError::Forbidden("become a courier first (POST /api/v1/couriers/me)")
}

impl DispatchConfig {
    /// The core's settings on `campus`: these, with the campus's
    /// `[dispatch]` overrides.
    pub fn on(&self, campus: &Campus) -> core::CoreSettings {
        let o = campus.dispatch();
        let minutes = |d: Duration| d.as_secs_f64() / 60.0;
        let max_tasks = o.max_tasks.unwrap_or(self.max_tasks);
        core::CoreSettings {
            params: Params {
                speed: o.speed.unwrap_or(self.speed),
                whole_minutes: false,
                pickup_service: minutes(self.pickup_service),
                dropoff_service: minutes(self.dropoff_service),
                target: minutes(o.target.unwrap_or(self.target)),
                max: minutes(o.max.unwrap_or(self.max)),
                max_is_hard: false,
                max_bundle: max_tasks as usize,
            },
            max_tasks,
            presence_ttl: self.presence_ttl,
            reassign_after: self.reassign_after,
            tick: minutes(self.tick),
        }
    }
}

/// Hears the orders shards' events and hands each to the dispatcher of
/// its order's campus; an open task also says where its courier works.
struct Events {
    campuses: Arc<Campuses>,
    dispatchers: Arc<HashMap<CampusId, CampusDispatcher>>,
    working: Arc<DashMap<OpenId, CampusId>>,
    registry: Addr<Registry>,
}

impl Actor for Events {
    type Context = Context<Self>;
}

impl Handler<OrderEvent> for Events {
    type Result = ();

    fn handle(&mut self, event: OrderEvent, _: &mut Self::Context) {
        let campus = match &event {
            OrderEvent::Waiting(w) => w.campus.as_ref(),
            OrderEvent::Taken(_, campus) => campus.as_ref(),
            OrderEvent::Task(t) => t.campus.as_ref(),
            OrderEvent::PaymentDue(_)
            | OrderEvent::RefundDue(_)
            | OrderEvent::OutboxWritten
            | OrderEvent::MoneyWritten => return,
        };
        // An order of a campus no longer on the map has no dispatcher: it
        // stays visible and refundable through its shard.
        let Some(campus) = self.campuses.of(campus) else {
            return;
        };
        let id = campus.campus_id();
        if let OrderEvent::Task(t) = &event {
            if matches!(
                t.status,
                crate::domain::Status::Assigned | crate::domain::Status::PickedUp
            ) {
                let before = self.working.insert(t.courier.clone(), id.clone());
                if before.as_ref() != Some(id) {
                    self.registry.do_send(couriers::WorksOn {
                        courier: t.courier.clone(),
                        campus: id.clone(),
                    });
                }
            }
        }
        if let Some(d) = self.dispatchers.get(id) {
            d.addr.do_send(event);
        }
    }
}

/// The façade's handle on dispatch: routes each request to the courier
/// registry and to the dispatcher of the campus it concerns.
#[derive(Clone)]
pub struct Dispatch {
    campuses: Arc<Campuses>,
    dispatchers: Arc<HashMap<CampusId, CampusDispatcher>>,
    registry: Addr<Registry>,
    events: Addr<Events>,
    orders: Orders,
    /// The campus each courier works on (went online or holds tasks on).
    working: Arc<DashMap<OpenId, CampusId>>,
}

impl Dispatch {
    /// Starts the registry and one supervised dispatcher per campus, each
    /// on its own arbiter thread; hand [`Dispatch::listener`] to the
    /// orders shards.
    pub fn start(
        store: Arc<dyn CourierRepo>,
        orders: Orders,
        campuses: Arc<Campuses>,
        config: DispatchConfig,
    ) -> Self {
        // Where each courier works survives a restart: operators limited to
        // campuses are checked against it before anyone comes back online.
        let working = Arc::new(DashMap::new());
        match store.all_couriers() {
            Ok(all) => {
                for p in all {
                    if let Some(campus) = p.campus {
                        working.insert(p.openid, campus);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %crate::errors::chain(&e), "courier profiles unreadable")
            }
        }
        let registry = couriers::start(
            store,
            orders.clone(),
            RegistryConfig {
                review: config.review,
                releases_per_day: config.releases_per_day,
            },
        );
        let dispatchers: HashMap<CampusId, CampusDispatcher> = campuses
            .iter()
            .map(|campus| {
                let handle = start_campus(&campuses, campus, &orders, &registry, &config);
                (campus.campus_id().clone(), handle)
            })
            .collect();
        let dispatchers = Arc::new(dispatchers);
        let events = Events {
            campuses: campuses.clone(),
            dispatchers: dispatchers.clone(),
            working: working.clone(),
            registry: registry.clone(),
        }
        .start();
        Self {
            campuses,
            dispatchers,
            registry,
            events,
            orders,
            working,
        }
    }

    /// The campus a courier works on (went online or holds tasks on),
    /// if any since the start.
    pub fn works_on(&self, courier: &OpenId) -> Option<CampusId> {
        self.working.get(courier).map(|c| c.clone())
    }

    /// The couriers who work on a campus that `on` takes.
    pub fn couriers_where(
        &self,
        on: impl Fn(&CampusId) -> bool,
    ) -> std::collections::HashSet<OpenId> {
        self.working
            .iter()
            .filter(|e| on(e.value()))
            .map(|e| e.key().clone())
            .collect()
    }

    /// The dispatcher of a campus (None: not on the map).
    fn on(&self, campus: &CampusId) -> Option<&CampusDispatcher> {
        self.dispatchers.get(campus)
    }

    /// The dispatcher of the campus a courier works on.
    fn working_on(&self, courier: &OpenId) -> Option<&CampusDispatcher> {
        let campus = self.working.get(courier)?.clone();
        self.on(&campus)
    }

    /// A courier's profile, or Forbidden for a user who is not one.
    async fn profile(&self, courier: &OpenId) -> Result<CourierProfile, DispatchError> {
        self.registry
            .send(couriers::Profile(courier.clone()))
            .await??
            .ok_or_else(not_a_courier)
    }

    /// A courier's profile, or UnknownCourier (an operator named them).
    async fn named(&self, courier: &OpenId) -> Result<CourierProfile, DispatchError> {
        match self.profile(courier).await {
            Err(DispatchError::Forbidden(_)) => Err(DispatchError::UnknownCourier),
            other => other,
        }
    }

    /// Tells every campus that a courier's profile changed, and takes back
    /// the tasks a barred courier has not picked up before answering.
    async fn changed(&self, profile: &CourierProfile, operator: Option<OperatorName>) {
        let by = operator.map_or(ChangedBy::Dispatcher, |name| {
            ChangedBy::Operator(Some(name))
        });
        for d in self.dispatchers.values() {
            let changed = dispatcher::Changed {
                profile: profile.clone(),
            };
            // A campus that cannot answer finishes it itself: its check of
            // barred couriers' tasks takes them back.
            let Ok(back) = d.addr.send(changed).await else {
                continue;
            };
            for id in back {
                let courier = profile.openid.clone();
                if let Err(e) = self.orders.unassign(id.clone(), courier, by.clone()).await {
                    tracing::warn!(order = %id, error = %e, "could not take a task back");
                }
            }
        }
    }

    /// The courier as the API shows them, wherever they work.
    async fn view(&self, profile: CourierProfile) -> CourierView {
        let Some(d) = self.working_on(&profile.openid) else {
            return CourierView::absent(profile, now_utc());
        };
        match d.addr.send(dispatcher::Views(vec![profile.clone()])).await {
            Ok(mut views) => views
                .pop()
                .flatten()
                .unwrap_or_else(|| CourierView::absent(profile, now_utc())),
            Err(_) => CourierView::absent(profile, now_utc()),
        }
    }

    /// Registers (or updates) a courier.
    pub async fn register(&self, application: Application) -> Result<CourierView, DispatchError> {
        let profile = self
            .registry
            .send(couriers::Register(application))
            .await??;
        // New papers send an approved courier back to review: off duty
        // until an operator looks again.
        if profile.may_work(now_utc()).is_err() {
            self.changed(&profile, None).await;
        }
        Ok(self.view(profile).await)
    }

    /// An operator's decision about a courier; true when it changed
    /// something. Durable first: a crash after it is finished by the
    /// campuses' check of barred couriers' tasks.
    pub async fn decide(
        &self,
        courier: OpenId,
        decision: Decision,
        operator: OperatorName,
    ) -> Result<(CourierView, bool), DispatchError> {
        let (profile, changed) = self
            .registry
            .send(couriers::Decide { courier, decision })
            .await??;
        if changed {
            self.changed(&profile, Some(operator)).await;
        }
        Ok((self.view(profile).await, changed))
    }

    /// A courier gives back an order they have not picked up.
    pub async fn release(
        &self,
        id: OrderId,
        courier: OpenId,
        reason: String,
    ) -> Result<Order, DispatchError> {
        self.registry
            .send(couriers::Release {
                id,
                courier,
                reason,
            })
            .await?
    }

    /// Couriers (in one review state), oldest application first, each with
    /// their presence on the campus they work on.
    pub async fn couriers(
        &self,
        review: Option<Review>,
    ) -> Result<Vec<CourierView>, DispatchError> {
        let now = now_utc();
        let profiles: Vec<CourierProfile> = self
            .registry
            .send(couriers::AllProfiles)
            .await??
            .into_iter()
            .filter(|p| review.is_none_or(|r| p.review_at(now) == r))
            .collect();
        let mut views: Vec<Option<CourierView>> = vec![None; profiles.len()];
        for d in self.dispatchers.values() {
            let here = d.addr.send(dispatcher::Views(profiles.clone())).await?;
            for (slot, view) in views.iter_mut().zip(here) {
                // Present beats holding tasks elsewhere after a move.
                if slot.as_ref().is_none_or(|s| !s.online) && view.is_some() {
                    *slot = view;
                }
            }
        }
        Ok(profiles
            .into_iter()
            .zip(views)
            .map(|(p, view)| view.unwrap_or_else(|| CourierView::absent(p, now)))
            .collect())
    }

    /// Online / offline / location on `campus`. A courier works on one
    /// campus at a time: coming to another ends their presence on the
    /// first, unless they hold tasks there (409).
    pub async fn presence(
        &self,
        courier: OpenId,
        campus: &CampusId,
        presence: Presence,
    ) -> Result<CourierView, DispatchError> {
        let mut profile = self.profile(&courier).await?;
        let d = match (&presence, self.working_on(&courier)) {
            // Offline is said to wherever they work.
            (Presence::Offline, Some(d)) => d,
            _ => self.on(campus).ok_or(DispatchError::NotFound)?,
        };
        if !matches!(presence, Presence::Offline) {
            if matches!(presence, Presence::Online(_)) {
                profile
                    .may_work(now_utc())
                    .map_err(DispatchError::Forbidden)?;
            }
            let previous = self.working.get(&courier).map(|c| c.clone());
            if let Some(previous) = previous.filter(|p| p != campus) {
                if let Some(old) = self.on(&previous) {
                    old.addr.send(dispatcher::Leave(courier.clone())).await??;
                }
            }
            if profile.campus.as_ref() != Some(campus) {
                self.registry
                    .send(couriers::WorksOn {
                        courier: courier.clone(),
                        campus: campus.clone(),
                    })
                    .await??;
                profile.campus = Some(campus.clone());
            }
            self.working.insert(courier.clone(), campus.clone());
        }
        d.addr
            .send(dispatcher::SetPresence { profile, presence })
            .await?
    }

    /// Grab an open order, on the campus the courier works on.
    pub async fn grab(&self, id: OrderId, courier: OpenId) -> Result<Order, DispatchError> {
        let profile = self.profile(&courier).await?;
        let d = self
            .working_on(&courier)
            .ok_or(DispatchError::Forbidden("go online to take orders"))?;
        d.addr
            .send(dispatcher::Grab {
                id,
                profile,
                operator: None,
            })
            .await?
    }

    /// An operator hands an order (waiting, or assigned and not picked up)
    /// to an online courier with room on its campus.
    pub async fn reassign(
        &self,
        id: OrderId,
        courier: OpenId,
        operator: OperatorName,
    ) -> Result<Order, DispatchError> {
        let profile = self.named(&courier).await?;
        let d = self
            .working_on(&courier)
            .ok_or(DispatchError::Forbidden("go online to take orders"))?;
        d.addr
            .send(dispatcher::Grab {
                id,
                profile,
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
        let profile = self.named(&courier).await?;
        let Some(d) = self.working_on(&courier) else {
            return Ok((CourierView::absent(profile, now_utc()), false));
        };
        d.addr
            .send(dispatcher::ForceOffline { profile, operator })
            .await?
    }

    /// Couriers, routes and waiting orders of one campus, for the console.
    pub async fn board(&self, campus: &CampusId) -> Result<Board, DispatchError> {
        match self.on(campus) {
            Some(d) => Ok(d.addr.send(dispatcher::GetBoard).await?),
            None => Ok(Board::default()),
        }
    }

    /// When `courier` is predicted to hand order `id` (on `campus`; None:
    /// the default one) over; None when it is not their open task, or the
    /// dispatcher is unavailable.
    pub async fn eta_of(
        &self,
        id: OrderId,
        courier: OpenId,
        campus: Option<&CampusId>,
    ) -> Option<OffsetDateTime> {
        let campus = self.campuses.of(campus)?;
        let d = self.on(campus.campus_id())?;
        d.addr
            .send(dispatcher::EtaOf { id, courier })
            .await
            .ok()
            .flatten()
    }

    /// A courier's name and phone (None when unknown or unavailable).
    pub async fn contact_of(
        &self,
        courier: OpenId,
    ) -> Option<(String, crate::domain::PhoneNumber)> {
        let profile = self.profile(&courier).await.ok()?;
        Some((profile.name, profile.phone))
    }

    /// A courier's open and recently withdrawn tasks.
    pub async fn tasks_of(&self, courier: OpenId) -> Result<TaskList, DispatchError> {
        self.profile(&courier).await?;
        match self.working_on(&courier) {
            Some(d) => Ok(d.addr.send(dispatcher::TasksOf(courier)).await?),
            None => Ok(TaskList::default()),
        }
    }

    /// Open orders near a place, for a courier online on its campus.
    pub async fn open_orders(
        &self,
        courier: OpenId,
        near: PlaceId,
    ) -> Result<Vec<OrderId>, DispatchError> {
        let profile = self.profile(&courier).await?;
        let d = self.working_on(&courier).ok_or(DispatchError::Forbidden(
            "open orders are for online couriers",
        ))?;
        d.addr
            .send(dispatcher::OpenOrders { profile, near })
            .await?
    }

    /// Where the orders shards send their events.
    pub fn listener(&self) -> Recipient<OrderEvent> {
        self.events.clone().recipient()
    }

    /// True while every campus's dispatcher runs.
    pub fn is_alive(&self) -> bool {
        self.registry.connected() && self.dispatchers.values().all(|d| d.addr.connected())
    }

    /// Makes the default campus's dispatcher panic (fault injection for tests).
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        self.inject_panic_on(self.campuses.first().campus_id());
    }

    /// Makes one campus's dispatcher panic (fault injection for tests).
    #[doc(hidden)]
    pub fn inject_panic_on(&self, campus: &CampusId) {
        if let Some(d) = self.on(campus) {
            d.inject_panic();
        }
    }
}

/// Starts `campus`'s dispatcher on its own arbiter thread.
fn start_campus(
    campuses: &Campuses,
    campus: &Arc<Campus>,
    orders: &Orders,
    registry: &Addr<Registry>,
    config: &DispatchConfig,
) -> CampusDispatcher {
    let arbiter = Arbiter::new();
    let settings = config.on(campus);
    let campus_of = CampusOf::of(campuses, campus);
    let (tick, auto) = (config.tick, config.auto);
    let (orders, registry, campus) = (orders.clone(), registry.clone(), campus.clone());
    let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
        let core = core::DispatchCore::new(&campus, settings, now_utc(), Instant::now());
        Dispatcher::new(core, campus, campus_of, orders, registry, tick, auto)
    });
    CampusDispatcher { addr }
}
