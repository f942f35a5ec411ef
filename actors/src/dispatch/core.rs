//! One campus's dispatch state, pure: who is present where, each
//! courier's open tasks, the pool of paid orders waiting for a courier, and
//! what a planning round is given and decides. No actix, no sled, no clock:
//! the actor ([`super::dispatcher`]) passes the time in, carries the
//! decisions out to the shards, and feeds their answers back.
//!
//! Inside, places are the campus's place indices and times are planner
//! minutes since the core's epoch; ids and wall-clock times appear only at
//! the edges (the events coming in, the views going out).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::planner::{self, Params, Point, RouteTask};
use super::views::{
    Board, BoardCourier, BoardWaiting, CourierView, RouteStop, StopAction, TaskList,
    WithdrawReason, Withdrawn,
};
use super::DispatchError;
use crate::campus::Campus;
use crate::domain::{CampusId, CourierProfile, OpenId, OrderId, Status};
use crate::orders::{OrderError, OrderWaiting, TaskChanged};

/// How long a courier's task list shows a task taken away from them.
const WITHDRAWN_SHOWN_FOR: Duration = Duration::from_secs(3600);
/// How many taken-away tasks a courier's list shows at most.
const WITHDRAWN_SHOWN_MAX: usize = 20;
/// A campus where nothing changed re-plans this often (minutes) at least:
/// time alone moves little (a held-back assignment says when it is due),
/// and re-planning every tick for nothing is most of a busy server's CPU.
const QUIET_REPLAN: f64 = 1.0 / 60.0;

/// What the core needs of the `[dispatch]` settings (the campus's
/// overrides already applied).
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// The planner's parameters (its bundle limit is `max_tasks`).
    pub params: Params,
    /// Open tasks per courier.
    pub max_tasks: u32,
    /// No online or location call for this long = offline.
    pub presence_ttl: Duration,
    /// Offline time after which a courier's untouched tasks go back.
    pub reassign_after: Duration,
    /// Time between rounds, in minutes.
    pub tick: f64,
}

/// A paid order waiting for a courier.
struct Waiting {
    pickup: usize,
    dropoff: usize,
    customer: OpenId,
    /// Planner minutes.
    since: f64,
    ready: f64,
    /// Couriers who gave it back.
    declined: Vec<OpenId>,
}

/// A courier's presence on this campus.
struct Present {
    place: usize,
    /// Said online and not offline since.
    online: bool,
    /// The last online or location call.
    last_seen: Instant,
    /// When they said offline.
    offline_at: Option<Instant>,
}

/// An open task of a courier.
#[derive(Debug, Clone, Copy)]
struct Task {
    status: Status,
    pickup: usize,
    dropoff: usize,
    /// Planner minutes.
    ready: f64,
    /// When click-to-door started (payment, when this dispatcher saw it).
    placed: f64,
}

/// A stop of a courier's route, inside the core.
struct Stop {
    order: OrderId,
    pickup: bool,
    place: usize,
    /// Planner minutes.
    at: f64,
}

/// What one planning round gives the planner, and the handles to map its
/// decisions back: order key → id, courier key → openid.
#[derive(Default)]
struct RoundInput {
    orders: Vec<planner::Errand>,
    /// Keys below this are waiting orders; the rest ride a bundle under way.
    waiting: usize,
    ids: Vec<OrderId>,
    couriers: Vec<planner::Courier>,
    en_route: Vec<planner::EnRoute>,
    who: Vec<OpenId>,
}

/// An assignment a round decided, to be asked of the order's shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    /// The order.
    pub order: OrderId,
    /// The courier.
    pub courier: OpenId,
    /// How long the order waited.
    pub waited: Duration,
}

/// What a round decided.
#[derive(Debug, Default)]
pub struct Round {
    /// The planner ran (there were orders and couriers to plan).
    pub planned: bool,
    /// Assignments to ask (already reserved).
    pub sends: Vec<Send>,
    /// Metres each new courier rides to its pickup.
    pub distances: Vec<f64>,
}

/// Who someone is as the planner's owner tag (a courier never carries
/// their own order; the shard refuses it anyway).
fn owner_of(who: &OpenId) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    who.as_str().hash(&mut hasher);
    hasher.finish()
}

/// One campus's dispatch state.
pub struct DispatchCore {
    campus: CampusId,
    place_ids: Vec<String>,
    places: HashMap<String, usize>,
    points: Vec<Point>,
    settings: CoreSettings,
    /// Planner minute 0.
    epoch: OffsetDateTime,
    /// Since when this dispatcher runs: an absent courier is offline since.
    started_at: Instant,
    couriers: HashMap<OpenId, Present>,
    /// The latest profile of each courier seen here.
    profiles: HashMap<OpenId, CourierProfile>,
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
    /// Something the plan depends on changed since the last round.
    dirty: bool,
    /// Planner minutes before which a round with nothing changed is
    /// skipped.
    quiet_until: f64,
}

impl DispatchCore {
    /// An empty core for `campus`, whose planner minute 0 is `epoch`.
    pub fn new(
        campus: &Campus,
        settings: CoreSettings,
        epoch: OffsetDateTime,
        at: Instant,
    ) -> Self {
        let place_ids: Vec<String> = campus.places().iter().map(|p| p.id.clone()).collect();
        let places = place_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        let points = campus
            .places()
            .iter()
            .map(|p| Point { x: p.x, y: p.y })
            .collect();
        Self {
            campus: campus.campus_id().clone(),
            place_ids,
            places,
            points,
            settings,
            epoch,
            started_at: at,
            couriers: HashMap::new(),
            profiles: HashMap::new(),
            tasks: HashMap::new(),
            reserved: HashMap::new(),
            withdrawn: HashMap::new(),
            waiting: HashMap::new(),
            stranded: HashMap::new(),
            in_flight: HashSet::new(),
            returned: HashSet::new(),
            unassigning: HashSet::new(),
            dirty: true,
            quiet_until: f64::MIN,
        }
    }

    /// The next round plans again.
    fn touch(&mut self) {
        self.dirty = true;
    }

    /// Planner minutes of a wall-clock time.
    fn minutes(&self, t: OffsetDateTime) -> f64 {
        (t - self.epoch).as_seconds_f64() / 60.0
    }

    /// The wall-clock time of planner minutes.
    fn time(&self, minutes: f64) -> OffsetDateTime {
        self.epoch + time::Duration::seconds_f64(minutes * 60.0)
    }

    /// The place index of a place id on this campus.
    pub fn place(&self, id: &str) -> Option<usize> {
        self.places.get(id).copied()
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &CoreSettings {
        &self.settings
    }

    /// Forgets the orders and tasks (the shards tell them again) and what
    /// was in flight; presence and profiles stay. `at` starts the
    /// offline clock of couriers never seen.
    pub fn restart(&mut self, at: Instant) {
        self.touch();
        self.started_at = at;
        self.waiting.clear();
        self.stranded.clear();
        self.tasks.clear();
        self.in_flight.clear();
        self.returned.clear();
        self.reserved.clear();
        self.unassigning.clear();
    }

    /// How many orders wait, and how many couriers are online.
    pub fn counts(&self, at: Instant) -> (usize, usize) {
        let online = self
            .couriers
            .keys()
            .filter(|c| self.is_online(c, at))
            .count();
        (self.waiting.len(), online)
    }

    /// Whether no order waits.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Keeps the latest profile of a courier.
    pub fn know(&mut self, profile: CourierProfile) {
        if self.profiles.get(&profile.openid) != Some(&profile) {
            self.touch();
            self.profiles.insert(profile.openid.clone(), profile);
        }
    }

    /// The profile of a courier seen here, if any.
    pub fn profile(&self, courier: &OpenId) -> Option<&CourierProfile> {
        self.profiles.get(courier)
    }

    /// Couriers holding tasks whose profile this core has not seen.
    pub fn unknown_couriers(&self) -> Vec<OpenId> {
        self.tasks
            .keys()
            .filter(|c| !self.profiles.contains_key(*c))
            .cloned()
            .collect()
    }

    /// A paid order waits (or is told again).
    pub fn add_waiting(&mut self, msg: OrderWaiting) {
        self.touch();
        if self.in_flight.contains(&msg.id) {
            self.returned.insert(msg.id.clone());
        }
        let (Some(pickup), Some(dropoff)) = (
            self.place(msg.pickup.as_str()),
            self.place(msg.dropoff.as_str()),
        ) else {
            // Never planned, but never dropped either: the board shows it
            // so an operator can refund it.
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
        let waiting = Waiting {
            pickup,
            dropoff,
            customer: msg.customer,
            since: self.minutes(msg.since),
            ready: self.minutes(msg.ready_at),
            declined: msg.declined,
        };
        self.waiting.insert(msg.id, waiting);
    }

    /// Whether an order is stranded (its places left the map).
    pub fn is_stranded(&self, id: &OrderId) -> bool {
        self.stranded.contains_key(id)
    }

    /// A waiting order left the pool.
    pub fn remove_waiting(&mut self, id: &OrderId) {
        self.touch();
        self.waiting.remove(id);
        self.stranded.remove(id);
    }

    /// Online now: said so, and seen within `presence_ttl`.
    pub fn is_online(&self, courier: &OpenId, at: Instant) -> bool {
        self.couriers.get(courier).is_some_and(|p| {
            p.online && at.saturating_duration_since(p.last_seen) < self.settings.presence_ttl
        })
    }

    /// A courier says they are online at a place; true when they were
    /// online already (a refresh).
    pub fn set_online(&mut self, courier: OpenId, place: usize, at: Instant) -> bool {
        let already = self.is_online(&courier, at);
        if !already
            || self
                .couriers
                .get(&courier)
                .is_some_and(|p| p.place != place)
        {
            self.touch();
        }
        let present = Present {
            place,
            online: true,
            last_seen: at,
            offline_at: None,
        };
        self.couriers.insert(courier, present);
        already
    }

    /// A courier reports where they are: it refreshes an online courier's
    /// presence and never brings an offline (or expired) one back online.
    pub fn set_location(&mut self, courier: OpenId, place: usize, at: Instant) {
        // A phone reporting the same place again changes no plan.
        if self.couriers.get(&courier).is_none_or(|p| p.place != place) {
            self.touch();
        }
        let online = self.is_online(&courier, at);
        let since = self.offline_since(&courier, at);
        let entry = self.couriers.entry(courier).or_insert(Present {
            place,
            online: false,
            last_seen: at,
            offline_at: since,
        });
        entry.place = place;
        if online {
            entry.last_seen = at;
        } else if entry.online {
            entry.online = false;
            entry.offline_at = since;
        }
    }

    /// Marks an online courier offline from `at` (one whose presence
    /// already expired stays offline since it expired); false when they
    /// were not online.
    pub fn go_offline(&mut self, courier: &OpenId, at: Instant) -> bool {
        if !self.is_online(courier, at) {
            return false;
        }
        if let Some(p) = self.couriers.get_mut(courier) {
            p.online = false;
            p.offline_at = Some(at);
        }
        self.touch();
        true
    }

    /// A courier left for another campus: no presence here any more.
    pub fn forget(&mut self, courier: &OpenId) {
        self.touch();
        self.couriers.remove(courier);
    }

    /// Since when a courier counts as offline (None while online).
    fn offline_since(&self, courier: &OpenId, at: Instant) -> Option<Instant> {
        match self.couriers.get(courier) {
            _ if self.is_online(courier, at) => None,
            Some(p) if p.online => Some(p.last_seen + self.settings.presence_ttl),
            Some(p) => Some(p.offline_at.unwrap_or(self.started_at)),
            None => Some(self.started_at),
        }
    }

    /// Open tasks plus assignments in flight.
    fn open_tasks(&self, courier: &OpenId) -> u32 {
        let open = self.tasks.get(courier).map_or(0, HashMap::len) as u32;
        open + self.reserved.get(courier).copied().unwrap_or(0)
    }

    /// Whether a courier holds open tasks here.
    pub fn holds_tasks(&self, courier: &OpenId) -> bool {
        self.tasks.get(courier).is_some_and(|t| !t.is_empty())
    }

    /// A courier's open tasks (assigned or picked up).
    pub fn tasks_of(&self, courier: &OpenId) -> Vec<OrderId> {
        let mut open: Vec<OrderId> = self
            .tasks
            .get(courier)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        // Order ids sort by creation time.
        open.sort();
        open
    }

    /// Whether a courier is barred from working now (a courier whose
    /// profile this core has not seen is not: no verdict without papers).
    pub fn barred(&self, courier: &OpenId, now: OffsetDateTime) -> bool {
        self.profiles
            .get(courier)
            .is_some_and(|p| p.may_work(now).is_err())
    }

    /// Takes back at once the tasks a courier has not picked up; answers
    /// those to ask the shards to unassign.
    pub fn take_back(&mut self, courier: &OpenId) -> Vec<OrderId> {
        self.touch();
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

    /// Whether a courier may take `id` now (an operator's hand-over may
    /// give an order back to who gave it back).
    pub fn may_take(
        &self,
        courier: &OpenId,
        id: &OrderId,
        by_operator: bool,
        at: Instant,
    ) -> Result<(), DispatchError> {
        if !self.is_online(courier, at) {
            return Err(DispatchError::Forbidden("go online to take orders"));
        }
        if self.open_tasks(courier) >= self.settings.max_tasks {
            return Err(DispatchError::Conflict(format!(
                "a courier holds at most {} open tasks",
                self.settings.max_tasks
            )));
        }
        if self.in_flight.contains(id) {
            return Err(DispatchError::Conflict(
                "someone else is taking this order".into(),
            ));
        }
        let gave_back = self
            .waiting
            .get(id)
            .is_some_and(|w| w.declined.contains(courier));
        if gave_back && !by_operator {
            return Err(DispatchError::Conflict(
                "you gave this order back; it goes to another courier".into(),
            ));
        }
        Ok(())
    }

    /// Books an assignment asked of a shard.
    pub fn reserve(&mut self, id: &OrderId, courier: &OpenId) {
        *self.reserved.entry(courier.clone()).or_default() += 1;
        self.in_flight.insert(id.clone());
    }

    /// Books the outcome of an assignment attempt (`failure` is None when
    /// the shard accepted it); answers the tasks to take back from a
    /// courier barred meanwhile.
    pub fn settle(
        &mut self,
        id: &OrderId,
        courier: &OpenId,
        failure: Option<&OrderError>,
        now: OffsetDateTime,
    ) -> Vec<OrderId> {
        self.touch();
        self.in_flight.remove(id);
        let came_back = self.returned.remove(id);
        if let Some(n) = self.reserved.get_mut(courier) {
            *n = n.saturating_sub(1);
        }
        match failure {
            // Assigned, then back in the pool before this answer: the
            // shard's events already said so, and they are the later word.
            None if came_back => Vec::new(),
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
                            pickup: w.pickup,
                            dropoff: w.dropoff,
                            ready: w.ready,
                            placed: w.since,
                        });
                }
                // Suspended while this assignment was on its way: it goes
                // back like the rest of their untouched tasks.
                if self.barred(courier, now) {
                    self.take_back(courier)
                } else {
                    Vec::new()
                }
            }
            // Their own order: it stays in the pool for someone else.
            Some(OrderError::Forbidden(_)) => Vec::new(),
            // Cancelled, grabbed or otherwise not paid any more: out of the pool.
            Some(OrderError::Transition(_) | OrderError::NotFound) => {
                self.waiting.remove(id);
                Vec::new()
            }
            Some(_) => Vec::new(),
        }
    }

    /// Tasks to take back: those of couriers offline (or silent) longer
    /// than `reassign_after`, and of couriers barred from working, not
    /// yet picked up.
    pub fn stale(&mut self, now: OffsetDateTime, at: Instant) -> Vec<(OrderId, OpenId)> {
        let stale: Vec<(OrderId, OpenId)> = self
            .tasks
            .iter()
            .filter(|(courier, _)| {
                self.offline_since(courier, at).is_some_and(|t| {
                    at.saturating_duration_since(t) >= self.settings.reassign_after
                }) || self.barred(courier, now)
            })
            .flat_map(|(courier, tasks)| {
                tasks
                    .iter()
                    .filter(|(_, task)| task.status == Status::Assigned)
                    .map(move |(id, _)| (id.clone(), courier.clone()))
            })
            .filter(|(id, _)| !self.unassigning.contains(id))
            .collect();
        if !stale.is_empty() {
            self.touch();
        }
        self.unassigning
            .extend(stale.iter().map(|(id, _)| id.clone()));
        stale
    }

    /// Books a shard's news about a task.
    pub fn task_changed(&mut self, changed: TaskChanged, now: OffsetDateTime, at: Instant) {
        self.touch();
        let TaskChanged {
            id,
            courier,
            status,
            pickup,
            dropoff,
            ready_at,
            placed,
            campus: _,
        } = changed;
        let open = matches!(status, Status::Assigned | Status::PickedUp);
        let places = (self.place(pickup.as_str()), self.place(dropoff.as_str()));
        let (ready, placed) = (self.minutes(ready_at), self.minutes(placed));
        let tasks = self.tasks.entry(courier.clone()).or_default();
        let was_open = if let (true, (Some(pickup), Some(dropoff))) = (open, places) {
            // The payment time this dispatcher saw beats the creation time.
            let placed = tasks.get(&id).map_or(placed, |t| t.placed);
            let task = Task {
                status,
                pickup,
                dropoff,
                ready,
                placed,
            };
            tasks.insert(id.clone(), task);
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
            list.retain(|(when, _)| at.saturating_duration_since(*when) < WITHDRAWN_SHOWN_FOR);
            let withdrawn = Withdrawn {
                order_id: id,
                reason,
                at: now,
            };
            list.push((at, withdrawn));
            if list.len() > WITHDRAWN_SHOWN_MAX {
                list.remove(0);
            }
        }
    }

    /// One planning round: the planner sees every waiting order and every
    /// online courier (idle, on the way to a pickup, or busy until the end
    /// of their route); what it sends now is reserved and answered.
    pub fn round(&mut self, now: OffsetDateTime, at: Instant) -> Round {
        let mut round = Round::default();
        if self.waiting.is_empty() {
            return round;
        }
        let now_m = self.minutes(now);
        if !self.dirty && now_m < self.quiet_until {
            return round;
        }
        self.dirty = false;
        self.quiet_until = now_m + QUIET_REPLAN;
        let mut input = self.round_input(now_m, at);
        if input.orders.is_empty() || input.couriers.is_empty() {
            return round;
        }
        let plan = planner::plan_with(
            &self.settings.params,
            now_m,
            &input.orders,
            &input.couriers,
            &mut input.en_route,
        );
        round.planned = true;
        for joined in &plan.extensions {
            self.sends(&input, joined, now_m, &mut round);
        }
        for sent in &plan.assignments {
            // On campus the courier's time is cheap and the food's is not:
            // nobody is sent to stand at a pickup before it is ready.
            let ready = sent
                .orders
                .iter()
                .map(|&k| input.orders[k].ready)
                .fold(f64::MIN, f64::max);
            if sent.arrive + self.settings.tick < ready {
                // Planned again, it is sent once the courier would arrive
                // within a tick of it being ready.
                let due = now_m + (ready - self.settings.tick - sent.arrive);
                self.quiet_until = self.quiet_until.min(due);
                continue;
            }
            round
                .distances
                .push((sent.arrive - sent.depart) * self.settings.params.speed);
            self.sends(&input, sent, now_m, &mut round);
        }
        round
    }

    /// Reserves the orders of `a` that are still waiting (an extension
    /// also lists the orders the courier already has).
    fn sends(&mut self, input: &RoundInput, a: &planner::Assignment, now: f64, round: &mut Round) {
        for &key in a.orders.iter().filter(|&&k| k < input.waiting) {
            let id = &input.ids[key];
            let courier = &input.who[a.courier];
            let waited = self
                .waiting
                .get(id)
                .map_or(0.0, |w| (now - w.since).max(0.0));
            self.reserve(id, courier);
            round.sends.push(Send {
                order: id.clone(),
                courier: courier.clone(),
                waited: Duration::from_secs_f64(waited * 60.0),
            });
        }
    }

    /// The planner's view of now: waiting orders first (keys below
    /// `waiting`), then the orders of bundles under way; online couriers
    /// without an assignment in flight.
    fn round_input(&self, now: f64, at: Instant) -> RoundInput {
        let mut ids: Vec<&OrderId> = self
            .waiting
            .keys()
            .filter(|id| !self.in_flight.contains(*id))
            .collect();
        ids.sort();
        let mut input = RoundInput {
            waiting: ids.len(),
            ..RoundInput::default()
        };
        for id in ids {
            let w = &self.waiting[id];
            input.orders.push(planner::Errand {
                key: input.ids.len(),
                site: w.pickup as u32,
                pickup: self.points[w.pickup],
                dropoff: self.points[w.dropoff],
                placed: w.since,
                ready: w.ready,
                owner: Some(owner_of(&w.customer)),
                barred: w.declined.iter().map(owner_of).collect(),
            });
            input.ids.push(id.clone());
        }
        let mut online: Vec<&OpenId> = self
            .couriers
            .keys()
            .filter(|c| self.is_online(c, at) && self.reserved.get(*c).is_none_or(|&n| n == 0))
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
    fn add_courier(&self, input: &mut RoundInput, courier: &OpenId, now: f64) {
        let Some(present) = self.couriers.get(courier) else {
            return;
        };
        let p = &self.settings.params;
        let key = input.who.len();
        input.who.push(courier.clone());
        let here = self.points[present.place];
        let owner = Some(owner_of(courier));
        let tasks = self.tasks.get(courier).filter(|t| !t.is_empty());
        let (pos, free_at) = match tasks {
            None => (here, now),
            Some(_) => self.stops(courier, now).last().map_or((here, now), |stop| {
                let end = stop.at + p.dropoff_service / 2.0;
                (self.points[stop.place], end.max(now))
            }),
        };
        input.couriers.push(planner::Courier {
            key,
            pos,
            free_at,
            off_time: f64::INFINITY,
            capacity: self.settings.max_tasks as usize,
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
        let pickup = self.points[site];
        let arrive = now + p.travel(here, pickup);
        let mut ids: Vec<&OrderId> = tasks.keys().collect();
        ids.sort();
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            let t = &tasks[id];
            orders.push(planner::Errand {
                key: input.ids.len(),
                site: site as u32,
                pickup,
                dropoff: self.points[t.dropoff],
                placed: t.placed,
                ready: t.ready,
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
            depart: now,
            arrive,
            pickup_at: (arrive + p.pickup_service / 2.0).max(ready),
            orders,
            capacity: self.settings.max_tasks as usize,
            off_time: f64::INFINITY,
            owner,
        });
    }

    /// A courier's remaining stops with planned times, from where they
    /// are (or their first pickup when this dispatcher has not seen them).
    fn stops(&self, courier: &OpenId, now: f64) -> Vec<Stop> {
        let Some(tasks) = self.tasks.get(courier) else {
            return Vec::new();
        };
        let mut ids: Vec<&OrderId> = tasks.keys().collect();
        ids.sort();
        let plan_tasks: Vec<RouteTask> = ids
            .iter()
            .enumerate()
            .map(|(key, id)| {
                let t = &tasks[*id];
                RouteTask {
                    key,
                    pickup: (t.status == Status::Assigned)
                        .then(|| (self.points[t.pickup], t.ready)),
                    dropoff: self.points[t.dropoff],
                }
            })
            .collect();
        let start = self
            .couriers
            .get(courier)
            .map(|p| p.place)
            .or_else(|| ids.first().map(|id| tasks[*id].pickup))
            .map_or(Point { x: 0.0, y: 0.0 }, |i| self.points[i]);
        planner::route(&self.settings.params, now, start, &plan_tasks)
            .into_iter()
            .map(|visit| {
                let id = ids[visit.key];
                let task = &tasks[id];
                Stop {
                    order: id.clone(),
                    pickup: visit.pickup,
                    place: if visit.pickup {
                        task.pickup
                    } else {
                        task.dropoff
                    },
                    at: visit.at.max(now),
                }
            })
            .collect()
    }

    /// A courier's remaining stops as the API shows them.
    pub fn route_of(&self, courier: &OpenId, now: OffsetDateTime) -> Vec<RouteStop> {
        self.stops(courier, self.minutes(now))
            .into_iter()
            .map(|stop| RouteStop {
                order_id: stop.order,
                action: if stop.pickup {
                    StopAction::Pickup
                } else {
                    StopAction::Dropoff
                },
                place_id: self.place_ids[stop.place].clone(),
                eta: self.time(stop.at),
            })
            .collect()
    }

    /// When `courier` is planned to hand `id` over.
    pub fn eta_of(
        &self,
        id: &OrderId,
        courier: &OpenId,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        self.stops(courier, self.minutes(now))
            .into_iter()
            .find(|s| s.order == *id && !s.pickup)
            .map(|s| self.time(s.at))
    }

    /// A courier's task list: open tasks, route, recently withdrawn.
    pub fn task_list(&self, courier: &OpenId, now: OffsetDateTime, at: Instant) -> TaskList {
        let withdrawn = self
            .withdrawn
            .get(courier)
            .map(|list| {
                list.iter()
                    .rev()
                    .filter(|(when, _)| at.saturating_duration_since(*when) < WITHDRAWN_SHOWN_FOR)
                    .map(|(_, w)| w.clone())
                    .collect()
            })
            .unwrap_or_default();
        TaskList {
            open: self.tasks_of(courier),
            route: self.route_of(courier, now),
            withdrawn,
        }
    }

    /// Open orders for an online courier, nearest to place `near` first.
    pub fn open_orders(&self, courier: &OpenId, near: usize) -> Vec<OrderId> {
        let from = self.points[near];
        let mut open: Vec<(f64, f64, &OrderId)> = self
            .waiting
            .iter()
            .filter(|(id, w)| {
                !self.in_flight.contains(*id)
                    && w.customer != *courier
                    && !w.declined.contains(courier)
            })
            .map(|(id, w)| (from.distance(self.points[w.pickup]), w.since, id))
            .collect();
        open.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.cmp(b.2))
        });
        open.into_iter().map(|(_, _, id)| id.clone()).collect()
    }

    /// What the operator console shows: every courier present or holding
    /// tasks (whose profile is known), with their route, and the waiting
    /// orders.
    pub fn board(&self, now: OffsetDateTime, at: Instant) -> Board {
        let mut seen: Vec<&OpenId> = self.couriers.keys().chain(self.tasks.keys()).collect();
        seen.sort();
        seen.dedup();
        let mut couriers: Vec<BoardCourier> = seen
            .into_iter()
            .filter_map(|id| self.profiles.get(id))
            .map(|profile| BoardCourier {
                route: self.route_of(&profile.openid, now),
                courier: self.courier_view(profile.clone(), now, at),
            })
            .collect();
        couriers.sort_by(|a, b| {
            b.courier
                .online
                .cmp(&a.courier.online)
                .then(a.courier.name.cmp(&b.courier.name))
        });
        let mut waiting: Vec<BoardWaiting> = self
            .waiting
            .iter()
            .map(|(id, w)| BoardWaiting {
                order_id: id.clone(),
                pickup: self.place_ids[w.pickup].clone(),
                dropoff: self.place_ids[w.dropoff].clone(),
                since: self.time(w.since),
                on_map: true,
            })
            .chain(self.stranded.values().cloned())
            .collect();
        waiting.sort_by(|a, b| a.since.cmp(&b.since).then(a.order_id.cmp(&b.order_id)));
        Board { couriers, waiting }
    }

    /// A courier's presence here: online, place, open tasks.
    pub fn presence_of(&self, courier: &OpenId, at: Instant) -> (bool, Option<String>, u32) {
        (
            self.is_online(courier, at),
            self.couriers
                .get(courier)
                .map(|p| self.place_ids[p.place].clone()),
            self.tasks.get(courier).map_or(0, HashMap::len) as u32,
        )
    }

    /// A courier as the API shows them: their profile and their presence here.
    pub fn courier_view(
        &self,
        profile: CourierProfile,
        now: OffsetDateTime,
        at: Instant,
    ) -> CourierView {
        let (online, place_id, open_tasks) = self.presence_of(&profile.openid, at);
        let campus = self.couriers.contains_key(&profile.openid) || open_tasks > 0;
        CourierView::of(
            profile,
            now,
            online,
            place_id,
            open_tasks,
            campus.then(|| self.campus.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Application, Decision, PhoneNumber, PlaceId};

    const MAP: &str = "\
[[places]]\nid='station'\nname='S'\nkind='station'\nx=0\ny=0\n\
[[places]]\nid='dorm'\nname='D'\nkind='dorm'\nx=400\ny=300\n\
[[places]]\nid='gate'\nname='G'\nkind='gate'\nx=800\ny=0\n";

    fn epoch() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("time")
    }

    fn core(max_tasks: u32) -> (DispatchCore, Instant) {
        let campus = Campus::parse(MAP, "t").expect("map");
        let settings = CoreSettings {
            params: Params {
                speed: 200.0,
                whole_minutes: false,
                pickup_service: 2.0,
                dropoff_service: 2.0,
                target: 40.0,
                max: 90.0,
                max_is_hard: false,
                max_bundle: max_tasks as usize,
            },
            max_tasks,
            presence_ttl: Duration::from_secs(300),
            reassign_after: Duration::from_secs(600),
            tick: 0.2 / 60.0,
        };
        let at = Instant::now();
        (DispatchCore::new(&campus, settings, epoch(), at), at)
    }

    fn who(s: &str) -> OpenId {
        OpenId::parse(s).expect("openid")
    }

    fn order(n: u32) -> OrderId {
        OrderId::parse(&format!("O{n:04}")).expect("id")
    }

    fn waiting(n: u32, customer: &str, since: OffsetDateTime) -> OrderWaiting {
        OrderWaiting {
            id: order(n),
            pickup: PlaceId::unchecked("station"),
            dropoff: PlaceId::unchecked("dorm"),
            customer: who(customer),
            since,
            ready_at: since,
            declined: Vec::new(),
            campus: None,
        }
    }

    fn task(n: u32, courier: &str, status: Status) -> TaskChanged {
        TaskChanged {
            id: order(n),
            courier: who(courier),
            status,
            pickup: PlaceId::unchecked("station"),
            dropoff: PlaceId::unchecked("dorm"),
            ready_at: epoch(),
            placed: epoch(),
            campus: None,
        }
    }

    fn profile(courier: &str) -> CourierProfile {
        let app = Application {
            openid: who(courier),
            name: courier.into(),
            phone: PhoneNumber::parse("13800138000").expect("phone"),
            student_no: None,
            card_photo: None,
            name_flagged: false,
        };
        CourierProfile::apply(None, app, false, epoch())
    }

    #[test]
    fn presence_expires_and_a_location_never_brings_a_courier_back_online() {
        let (mut core, at) = core(3);
        let c = who("oC1");
        assert!(!core.set_online(c.clone(), 0, at), "a first online call");
        assert!(core.set_online(c.clone(), 0, at), "a second one refreshes");
        assert!(core.is_online(&c, at + Duration::from_secs(299)));
        assert!(!core.is_online(&c, at + Duration::from_secs(300)));
        core.set_location(c.clone(), 2, at + Duration::from_secs(400));
        assert!(!core.is_online(&c, at + Duration::from_secs(400)));
        assert_eq!(core.presence_of(&c, at).1.as_deref(), Some("gate"));
        let later = at + Duration::from_secs(500);
        assert!(
            !core.set_online(c.clone(), 1, later),
            "expired: a fresh start"
        );
        assert!(core.go_offline(&c, later));
        assert!(!core.go_offline(&c, later), "already offline");
    }

    #[test]
    fn a_round_sends_the_nearest_free_courier_once_and_never_the_customer() {
        let (mut core, at) = core(3);
        let now = epoch() + Duration::from_secs(60);
        core.add_waiting(waiting(1, "oCustomer", epoch()));
        core.set_online(who("oCustomer"), 0, at);
        assert!(
            core.round(now, at).sends.is_empty(),
            "only the customer is online"
        );
        core.set_online(who("oNear"), 0, at);
        core.set_online(who("oFar"), 2, at);
        let round = core.round(now, at);
        assert!(round.planned);
        let sent: Vec<(OrderId, OpenId)> = round
            .sends
            .iter()
            .map(|s| (s.order.clone(), s.courier.clone()))
            .collect();
        assert_eq!(sent, [(order(1), who("oNear"))]);
        assert_eq!(round.sends[0].waited, Duration::from_secs(60));
        assert!(
            core.round(now, at).sends.is_empty(),
            "in flight: not sent twice"
        );
        let back = core.settle(&order(1), &who("oNear"), None, now);
        assert!(back.is_empty());
        assert_eq!(core.tasks_of(&who("oNear")), [order(1)]);
        assert!(core.is_idle());
    }

    #[test]
    fn a_campus_where_nothing_changed_plans_again_only_when_something_is_due() {
        let (mut core, at) = core(3);
        core.set_online(who("oC"), 2, at);
        // Ready in 10 minutes: planned, held back (the courier would wait).
        let mut later = waiting(1, "oA", epoch());
        later.ready_at = epoch() + Duration::from_secs(600);
        (later.pickup, later.dropoff) = (PlaceId::unchecked("dorm"), PlaceId::unchecked("gate"));
        core.add_waiting(later);
        let first = core.round(epoch(), at);
        assert!(first.planned && first.sends.is_empty());
        let tick = Duration::from_millis(200);
        let quiet = core.round(epoch() + tick, at + tick);
        assert!(!quiet.planned, "nothing changed, nothing due");
        let second = Duration::from_secs(1);
        assert!(
            core.round(epoch() + second, at + second).planned,
            "at least every second"
        );
        core.set_online(who("oD"), 0, at + second);
        let changed = core.round(epoch() + second + tick, at + second + tick);
        assert!(
            changed.planned,
            "a courier coming online is planned at the next tick"
        );
        core.go_offline(&who("oD"), at + second + tick);
        // Sent when a courier would arrive within a tick of it being ready:
        // minutes in, not before.
        let mut sent = Vec::new();
        let mut planned = 0;
        let mut when = Duration::ZERO;
        for ms in (2_000..=700_000).step_by(200) {
            when = Duration::from_millis(ms);
            // The app keeps saying it is online: a refresh, no change.
            core.set_online(who("oC"), 2, at + when);
            let round = core.round(epoch() + when, at + when);
            planned += usize::from(round.planned);
            sent.extend(round.sends);
            if !sent.is_empty() {
                break;
            }
        }
        assert_eq!(sent.len(), 1, "sent once it was due");
        assert_eq!(sent[0].order, order(1));
        assert!(
            when > Duration::from_secs(60),
            "not before it was due: {when:?}"
        );
        assert!(
            planned * 4 < 3490,
            "quiet ticks were skipped: {planned} rounds"
        );
    }

    #[test]
    fn capacity_counts_assignments_in_flight() {
        let (mut core, at) = core(1);
        let now = epoch();
        core.set_online(who("oOnly"), 0, at);
        core.add_waiting(waiting(1, "oA", now));
        core.add_waiting(waiting(2, "oB", now));
        assert_eq!(core.round(now, at).sends.len(), 1);
        let second = core.may_take(&who("oOnly"), &order(2), false, at);
        assert!(
            matches!(second, Err(DispatchError::Conflict(_))),
            "{second:?}"
        );
    }

    #[test]
    fn an_order_back_in_the_pool_before_its_answer_is_not_booked_again() {
        let (mut core, at) = core(3);
        core.set_online(who("oC"), 0, at);
        core.add_waiting(waiting(1, "oA", epoch()));
        assert_eq!(core.round(epoch(), at).sends.len(), 1);
        // Given back while the assignment was in flight: the shard's
        // events said assigned, then paid again.
        core.add_waiting(waiting(1, "oA", epoch()));
        core.settle(&order(1), &who("oC"), None, epoch());
        assert!(core.tasks_of(&who("oC")).is_empty());
        assert!(!core.is_idle(), "it waits for another round");
    }

    #[test]
    fn untouched_tasks_of_absent_or_barred_couriers_go_back_once() {
        let (mut core, at) = core(3);
        core.task_changed(task(1, "oGone", Status::Assigned), epoch(), at);
        core.task_changed(task(2, "oGone", Status::PickedUp), epoch(), at);
        assert!(
            core.stale(epoch(), at).is_empty(),
            "absent since the start only"
        );
        let later = at + Duration::from_secs(601);
        assert_eq!(core.stale(epoch(), later), [(order(1), who("oGone"))]);
        assert!(
            core.stale(epoch(), later).is_empty(),
            "being taken back already"
        );

        core.set_online(who("oBad"), 0, at);
        core.task_changed(task(3, "oBad", Status::Assigned), epoch(), at);
        let mut barred = profile("oBad");
        barred
            .decide(
                Decision::Suspend {
                    reason: "late".into(),
                    until: None,
                },
                epoch(),
            )
            .expect("suspend");
        core.know(barred);
        assert_eq!(core.stale(epoch(), at), [(order(3), who("oBad"))]);
    }

    #[test]
    fn a_withdrawn_task_is_listed_and_the_route_is_in_place_ids_and_times() {
        let (mut core, at) = core(3);
        core.set_online(who("oC"), 0, at);
        core.task_changed(task(1, "oC", Status::Assigned), epoch(), at);
        let route = core.route_of(&who("oC"), epoch());
        let stops: Vec<(StopAction, &str)> = route
            .iter()
            .map(|s| (s.action, s.place_id.as_str()))
            .collect();
        assert_eq!(
            stops,
            [
                (StopAction::Pickup, "station"),
                (StopAction::Dropoff, "dorm")
            ]
        );
        // 500 m at 200 m/min plus half of each service time: 2.5 min + 2 min.
        let eta = core.eta_of(&order(1), &who("oC"), epoch()).expect("eta");
        assert!(
            eta > epoch() && eta < epoch() + Duration::from_secs(600),
            "{eta}"
        );
        core.task_changed(task(1, "oC", Status::Paid), epoch(), at);
        let list = core.task_list(&who("oC"), epoch(), at);
        assert!(list.open.is_empty() && list.route.is_empty());
        assert_eq!(list.withdrawn.len(), 1);
        assert_eq!(list.withdrawn[0].reason, WithdrawReason::Reassigned);
    }

    #[test]
    fn an_order_whose_places_left_the_map_is_shown_never_planned() {
        let (mut core, at) = core(3);
        core.set_online(who("oC"), 0, at);
        let mut lost = waiting(1, "oA", epoch());
        lost.dropoff = PlaceId::unchecked("old-dorm");
        core.add_waiting(lost);
        assert!(core.is_stranded(&order(1)));
        assert!(core.round(epoch(), at).sends.is_empty());
        let board = core.board(epoch(), at);
        assert_eq!(board.waiting.len(), 1);
        assert!(!board.waiting[0].on_map);
    }
}
