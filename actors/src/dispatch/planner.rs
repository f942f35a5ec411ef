//! The planning core: given the time, the orders waiting for a courier and
//! the couriers (where and when each is next free), decide which bundles to
//! send now, to whom, in which stop sequence. Pure: no actix, no sled, no
//! clock — the live dispatcher calls it with the wall clock, the MDRP
//! replay with a simulated one.
//!
//! One round (a rolling horizon, after Reyes et al. 2018):
//! 1. **Bundles.** Waiting orders are grouped by pickup place and, within a
//!    place, bundled in order of readiness up to a size set by demand over
//!    supply (more orders than free couriers → bigger bundles), each drop-off
//!    placed by cheapest insertion; an order joins only if nobody in the
//!    bundle is then delivered past the target because of it.
//! 2. **Matching.** Every bundle is priced against the couriers free now or
//!    soon (look-ahead): the click-to-door of its orders, heavily weighted
//!    lateness past the target, and the courier time the route uses. A
//!    min-cost assignment (Hungarian, over each bundle's nearest candidates)
//!    picks the pairs; a pair that would break `max` click-to-door, or pick
//!    up after the courier's shift, is never formed.
//! 3. **Commitment.** A pair is sent only when waiting cannot improve it:
//!    the courier is free now and would not stand at the pickup long before
//!    the food is ready — unless an order would otherwise miss the target.
//!    Everything else waits for the next round, where a better courier or a
//!    bundle partner may have appeared.
//!
//! Its cost grows with bundles × candidate couriers per round (each bundle
//! looks at its [`CANDIDATES`] nearest couriers), not with the whole day.

use std::collections::HashMap;

use super::assignment::{min_cost, Priced};

/// A position in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// East, metres.
    pub x: f64,
    /// North, metres.
    pub y: f64,
}

impl Point {
    /// Euclidean distance in metres.
    pub fn distance(self, other: Point) -> f64 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }
}

/// How travel and service take time; all times are minutes.
#[derive(Debug, Clone)]
pub struct Params {
    /// Metres per minute.
    pub speed: f64,
    /// Round travel times up to whole minutes (the MDRP rule).
    pub whole_minutes: bool,
    /// Minutes spent at a pickup (half before the pickup instant, half after).
    pub pickup_service: f64,
    /// Minutes spent at a drop-off (half before the hand-over, half after).
    pub dropoff_service: f64,
    /// Click-to-door target.
    pub target: f64,
    /// Click-to-door not to pass.
    pub max: f64,
    /// True: nothing is ever planned past `max` (an order that cannot make
    /// it stays undelivered). False: past `max` only where unavoidable — an
    /// order that even a courier standing at its pickup could no longer
    /// deliver in time is still delivered as soon as possible (late beats
    /// never); every other order keeps `max`.
    pub max_is_hard: bool,
    /// Most orders in one bundle (a courier's capacity).
    pub max_bundle: usize,
}

impl Params {
    /// Minutes from `a` to `b`.
    pub fn travel(&self, a: Point, b: Point) -> f64 {
        let t = a.distance(b) / self.speed;
        if self.whole_minutes {
            t.ceil()
        } else {
            t
        }
    }
}

/// An order as the planner sees it (named apart from the domain's
/// [`crate::domain::Order`]): points, times and who may not carry it.
#[derive(Debug, Clone)]
pub struct Errand {
    /// The caller's handle for it.
    pub key: usize,
    /// Which pickup place (orders of one place may share a courier).
    pub site: u32,
    /// Where it is picked up.
    pub pickup: Point,
    /// Where it goes.
    pub dropoff: Point,
    /// When the customer placed it (click-to-door counts from here).
    pub placed: f64,
    /// When it can be picked up.
    pub ready: f64,
    /// Who ordered it (a courier never carries their own order).
    pub owner: Option<u64>,
    /// Couriers (as their owner tags) who gave it back: never offered it again.
    pub barred: Vec<u64>,
}

impl Errand {
    /// Whether the courier with owner tag `courier` may carry it.
    pub fn may_go_with(&self, courier: Option<u64>) -> bool {
        courier.is_none_or(|c| self.owner != Some(c) && !self.barred.contains(&c))
    }
}

/// A courier who can take work.
#[derive(Debug, Clone)]
pub struct Courier {
    /// The caller's handle for them.
    pub key: usize,
    /// Where they are, or will be when free.
    pub pos: Point,
    /// When they are free (≤ now: idle now).
    pub free_at: f64,
    /// No pickup after this (end of shift).
    pub off_time: f64,
    /// Orders they may carry in this bundle.
    pub capacity: usize,
    /// Who they are as a customer (never their own order).
    pub owner: Option<u64>,
}

/// A bundle sent to a courier: go to the pickup, then drop off in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The courier's key.
    pub courier: usize,
    /// Order keys in delivery sequence.
    pub orders: Vec<usize>,
    /// When the courier sets off (now, or when free).
    pub depart: f64,
    /// When they reach the pickup place.
    pub arrive: f64,
    /// The pickup instant (never before the latest ready time).
    pub pickup: f64,
    /// The hand-over instant of each order, in sequence.
    pub dropoffs: Vec<f64>,
    /// When they are done with the last drop-off.
    pub free_at: f64,
}

/// Courier time is worth this much click-to-door (busy days need couriers).
const COURIER_TIME_WEIGHT: f64 = 15.0;
/// A minute past the target costs this many minutes of click-to-door.
const LATE_WEIGHT: f64 = 4.0;
/// A minute the courier stands at the pickup before the food is ready.
const WAIT_WEIGHT: f64 = 0.5;
/// Couriers free within this many minutes are candidates (not sent yet).
const LOOKAHEAD: f64 = 30.0;
/// Orders ready later than this many minutes from now wait for a later round.
const READY_HORIZON: f64 = 20.0;
/// A courier is sent when they would wait at most this long for the food.
const COMMIT_WAIT: f64 = 1.0;
/// Under scarcity, a bundle keeps every order this far from `max`.
const BUNDLE_MAX_MARGIN: f64 = 15.0;
/// Orders whose ready times are further apart than this are not bundled.
const BUNDLE_READY_GAP: f64 = 15.0;
/// Each bundle is priced against at most this many couriers (nearest first).
pub const CANDIDATES: usize = 30;
/// Rounds are this far apart (minutes): a deferred pair is looked at again then.
const ROUND: f64 = 1.0;
/// What serving one order is worth: more than any difference in cost, so a
/// round serves as many orders as it can.
const ORDER_WORTH: f64 = 10_000.0;
/// Extra worth of an order about to become impossible to deliver in time…
const URGENT_WORTH: f64 = 400.0;
/// What a minute of the bundle's route costs against other bundles.
const ROUTE_WEIGHT: f64 = 30.0;
/// …counted from this many minutes of slack before its deadline.
const URGENT_SLACK: f64 = 20.0;

/// The stop times of a bundle for a courier at `pos`, free at `free_at`.
pub fn schedule(
    p: &Params,
    now: f64,
    pos: Point,
    free_at: f64,
    pickup: Point,
    orders: &[&Errand],
) -> Assignment {
    let depart = free_at.max(now);
    let arrive = depart + p.travel(pos, pickup);
    from_arrival(p, depart, arrive, pickup, orders)
}

/// The stop times of a bundle for a courier who reaches `pickup` at `arrive`.
fn from_arrival(
    p: &Params,
    depart: f64,
    arrive: f64,
    pickup: Point,
    orders: &[&Errand],
) -> Assignment {
    let ready = orders.iter().map(|o| o.ready).fold(f64::MIN, f64::max);
    let pick = (arrive + p.pickup_service / 2.0).max(ready);
    let mut at = pick + p.pickup_service / 2.0;
    let mut here = pickup;
    let mut dropoffs = Vec::with_capacity(orders.len());
    for o in orders {
        let hand = at + p.travel(here, o.dropoff) + p.dropoff_service / 2.0;
        dropoffs.push(hand);
        at = hand + p.dropoff_service / 2.0;
        here = o.dropoff;
    }
    Assignment {
        courier: 0,
        orders: orders.iter().map(|o| o.key).collect(),
        depart,
        arrive,
        pickup: pick,
        dropoffs,
        free_at: at,
    }
}

/// Could nobody deliver `o` within `max` any more, not even a courier
/// standing at its pickup now?
pub fn hopeless(p: &Params, now: f64, o: &Errand) -> bool {
    let pickup = o.ready.max(now + p.pickup_service / 2.0);
    let door =
        pickup + p.pickup_service / 2.0 + p.travel(o.pickup, o.dropoff) + p.dropoff_service / 2.0;
    door - o.placed > p.max + 1e-9
}

/// What a schedule costs, or None when it passes `max` avoidably.
fn price(p: &Params, a: &Assignment, orders: &[&Errand], now: f64) -> Option<f64> {
    let mut cost = 0.0;
    for (o, drop) in orders.iter().zip(&a.dropoffs) {
        let ctd = drop - o.placed;
        if ctd > p.max && (p.max_is_hard || !hopeless(p, now, o)) {
            return None;
        }
        cost += ctd + LATE_WEIGHT * (ctd - p.target).max(0.0);
    }
    // Courier time counts from now: a courier kept waiting for the food
    // could have served someone else meanwhile, and waiting at the pickup
    // counts once more.
    let wait = (a.pickup - p.pickup_service / 2.0 - a.arrive).max(0.0);
    Some(cost + COURIER_TIME_WEIGHT * (a.free_at - now) + WAIT_WEIGHT * wait)
}

/// A candidate bundle: orders of one place in delivery sequence.
struct Bundle<'a> {
    pickup: Point,
    orders: Vec<&'a Errand>,
}

/// The delivery sequence of `orders` (from `pickup`) with `extra` inserted
/// where it adds the least total hand-over time.
fn insert_cheapest<'a>(
    p: &Params,
    pickup: Point,
    orders: &[&'a Errand],
    extra: &'a Errand,
) -> Vec<&'a Errand> {
    let mut best: Option<(f64, Vec<&Errand>)> = None;
    for at in 0..=orders.len() {
        let mut seq = orders.to_vec();
        seq.insert(at, extra);
        let a = schedule(p, 0.0, pickup, 0.0, pickup, &seq);
        let total: f64 = a.dropoffs.iter().sum();
        if best.as_ref().is_none_or(|(b, _)| total < *b) {
            best = Some((total, seq));
        }
    }
    best.map(|(_, s)| s).unwrap_or_default()
}

/// Bundles per place: by readiness, up to `size`, an order joining only
/// when no order of the bundle is then delivered past the target (counting
/// from the pickup at the latest ready time) on its account.
fn bundles<'a>(p: &Params, orders: &'a [Errand], size: usize) -> Vec<Bundle<'a>> {
    // With more orders than free couriers a shared trip is worth some
    // lateness: then an order may join as long as nobody is near `max`.
    let limit = if size > 1 {
        p.max - BUNDLE_MAX_MARGIN
    } else {
        p.target
    };
    let mut by_site: HashMap<u32, Vec<&Errand>> = HashMap::new();
    for o in orders {
        by_site.entry(o.site).or_default().push(o);
    }
    let mut sites: Vec<_> = by_site.into_iter().collect();
    sites.sort_by_key(|(site, _)| *site);
    let mut out = Vec::new();
    for (_, mut list) in sites {
        list.sort_by(|a, b| a.ready.total_cmp(&b.ready).then(a.key.cmp(&b.key)));
        let pickup = list[0].pickup;
        let mut current: Vec<&Errand> = Vec::new();
        for o in list {
            if !current.is_empty()
                && current.len() < size
                && o.ready - current[0].ready <= BUNDLE_READY_GAP
            {
                let seq = insert_cheapest(p, pickup, &current, o);
                let ready = seq.iter().map(|x| x.ready).fold(f64::MIN, f64::max);
                let a = schedule(p, ready, pickup, ready, pickup, &seq);
                let fine = seq
                    .iter()
                    .zip(&a.dropoffs)
                    .all(|(x, d)| d - x.placed <= limit);
                if fine {
                    current = seq;
                    continue;
                }
            }
            if !current.is_empty() {
                out.push(Bundle {
                    pickup,
                    orders: std::mem::take(&mut current),
                });
            }
            current.push(o);
        }
        if !current.is_empty() {
            out.push(Bundle {
                pickup,
                orders: current,
            });
        }
    }
    out
}

/// A bundle whose courier has not picked up yet: orders of the same place
/// may still join it at the pickup place.
#[derive(Debug, Clone)]
pub struct EnRoute {
    /// The courier's key.
    pub courier: usize,
    /// The pickup place.
    pub site: u32,
    /// Where it is.
    pub pickup: Point,
    /// When the courier set off.
    pub depart: f64,
    /// When they reach it.
    pub arrive: f64,
    /// The planned pickup instant.
    pub pickup_at: f64,
    /// The orders it carries, in delivery sequence.
    pub orders: Vec<Errand>,
    /// Most orders it may carry.
    pub capacity: usize,
    /// No pickup after this.
    pub off_time: f64,
    /// Who the courier is as a customer.
    pub owner: Option<u64>,
}

/// What a round decides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// New bundles to send.
    pub assignments: Vec<Assignment>,
    /// Bundles under way that take more orders at the pickup place (the
    /// whole new sequence and times; depart and arrive unchanged).
    pub extensions: Vec<Assignment>,
}

/// A later order may join a bundle at its pickup place if the pickup moves
/// by at most this many minutes.
const JOIN_DELAY: f64 = 2.0;

/// Orders that join bundles under way (cheapest insertion), and the rest.
fn join_en_route<'a>(
    p: &Params,
    now: f64,
    orders: &'a [Errand],
    en_route: &mut [EnRoute],
    limit: f64,
) -> (Vec<Assignment>, Vec<&'a Errand>) {
    let mut changed = vec![None; en_route.len()];
    let mut rest = Vec::new();
    for o in orders {
        let mut best: Option<(f64, usize, Assignment, Vec<Errand>)> = None;
        for (i, b) in en_route.iter().enumerate() {
            if b.site != o.site
                || b.pickup_at <= now
                || b.orders.len() >= b.capacity
                || !o.may_go_with(b.owner)
            {
                continue;
            }
            let current: Vec<&Errand> = b.orders.iter().collect();
            let seq = insert_cheapest(p, b.pickup, &current, o);
            let a = from_arrival(p, b.depart, b.arrive, b.pickup, &seq);
            let on_time = seq
                .iter()
                .zip(&a.dropoffs)
                .all(|(x, d)| d - x.placed <= limit);
            if a.pickup > b.pickup_at + JOIN_DELAY || a.pickup > b.off_time || !on_time {
                continue;
            }
            let added: f64 = a.dropoffs.iter().sum::<f64>() - o.placed;
            if best.as_ref().is_none_or(|(c, ..)| added < *c) {
                let owned = seq.into_iter().cloned().collect();
                best = Some((added, i, a, owned));
            }
        }
        match best {
            Some((_, i, mut a, seq)) => {
                a.courier = en_route[i].courier;
                en_route[i].orders = seq;
                en_route[i].pickup_at = a.pickup;
                changed[i] = Some(a);
            }
            None => rest.push(o),
        }
    }
    (changed.into_iter().flatten().collect(), rest)
}

/// One planning round at `now` with bundles under way: new bundles to
/// send, and orders that join bundles at their pickup place.
pub fn plan_with(
    p: &Params,
    now: f64,
    orders: &[Errand],
    couriers: &[Courier],
    en_route: &mut [EnRoute],
) -> Plan {
    let ready: Vec<Errand> = orders
        .iter()
        .filter(|o| o.ready <= now + READY_HORIZON)
        .cloned()
        .collect();
    let (extensions, rest) = join_en_route(p, now, &ready, en_route, p.target);
    let rest: Vec<Errand> = rest.into_iter().cloned().collect();
    Plan {
        assignments: plan(p, now, &rest, couriers),
        extensions,
    }
}

/// One planning round at `now`: the assignments to send now.
pub fn plan(p: &Params, now: f64, orders: &[Errand], couriers: &[Courier]) -> Vec<Assignment> {
    let candidates: Vec<&Courier> = couriers
        .iter()
        .filter(|c| c.off_time > now && c.free_at <= now + LOOKAHEAD && c.capacity > 0)
        .collect();
    // Food ready later than the horizon does not compete for couriers yet.
    let orders: Vec<Errand> = orders
        .iter()
        .filter(|o| o.ready <= now + READY_HORIZON)
        .cloned()
        .collect();
    let orders = &orders[..];
    if orders.is_empty() || candidates.is_empty() {
        return Vec::new();
    }
    let idle = candidates
        .iter()
        .filter(|c| c.free_at <= now)
        .count()
        .max(1);
    let soon = orders.iter().filter(|o| o.ready <= now + LOOKAHEAD).count();
    let size = soon.div_ceil(idle).clamp(1, p.max_bundle.max(1));
    let bundles = bundles(p, orders, size);
    let priced = price_pairs(p, now, &bundles, &candidates);
    let pairs = min_cost(bundles.len(), &priced);
    let mut out = Vec::new();
    let mut busy = vec![false; candidates.len()];
    let mut matched = vec![false; bundles.len()];
    for (b, slot) in pairs {
        matched[b] = true;
        let pair = &priced[b][slot];
        if let Some(sent) = committable(p, now, &bundles[b], pair, candidates[pair.courier]) {
            busy[pair.courier] = true;
            out.push(sent);
        }
    }
    // Second pass: a courier kept for food not ready yet may serve, now, a
    // bundle the first pass left without anyone (the deferred bundle is
    // looked at again next round).
    let left: Vec<usize> = (0..bundles.len()).filter(|b| !matched[*b]).collect();
    let free: Vec<&Courier> = candidates
        .iter()
        .enumerate()
        .filter(|(i, c)| !busy[*i] && c.free_at <= now)
        .map(|(_, c)| *c)
        .collect();
    if left.is_empty() || free.is_empty() {
        return out;
    }
    let rest: Vec<Bundle> = left
        .iter()
        .map(|&b| Bundle {
            pickup: bundles[b].pickup,
            orders: bundles[b].orders.clone(),
        })
        .collect();
    let priced = price_pairs(p, now, &rest, &free);
    for (b, slot) in min_cost(rest.len(), &priced) {
        let pair = &priced[b][slot];
        if let Some(sent) = committable(p, now, &rest[b], pair, free[pair.courier]) {
            out.push(sent);
        }
    }
    out
}

/// The assignment to send now for a matched pair, or None when waiting
/// can still help: the courier is not free yet, or would stand at the
/// pickup for the food while no order of the bundle is pressed for time.
fn committable(
    p: &Params,
    now: f64,
    bundle: &Bundle,
    pair: &Pair,
    courier: &Courier,
) -> Option<Assignment> {
    if courier.free_at > now {
        return None;
    }
    let a = &pair.assignment;
    let wait = a.pickup - p.pickup_service / 2.0 - a.arrive;
    let urgent = bundle
        .orders
        .iter()
        .zip(&a.dropoffs)
        .any(|(o, d)| d + ROUND - o.placed > p.target);
    (wait <= COMMIT_WAIT || urgent).then(|| Assignment {
        courier: courier.key,
        ..a.clone()
    })
}

/// One task of a courier's route.
#[derive(Debug, Clone)]
pub struct RouteTask {
    /// The caller's handle for it.
    pub key: usize,
    /// Where and when (ready) it is picked up; None once picked up.
    pub pickup: Option<(Point, f64)>,
    /// Where it goes.
    pub dropoff: Point,
}

/// A stop of a courier's route as the planner times it (the API's stop is
/// [`super::RouteStop`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// The task's key.
    pub key: usize,
    /// A pickup (else a drop-off).
    pub pickup: bool,
    /// When it happens (a pickup never before its ready time).
    pub at: f64,
}

/// The order in which a courier at `start` should make the stops of
/// `tasks`, with their times: each time the stop that can be done first
/// (a drop-off only after its pickup). Cheap and good for the few tasks a
/// courier holds.
pub fn route(p: &Params, now: f64, start: Point, tasks: &[RouteTask]) -> Vec<Visit> {
    let mut picked: Vec<bool> = tasks.iter().map(|t| t.pickup.is_none()).collect();
    let mut dropped = vec![false; tasks.len()];
    let (mut here, mut clock) = (start, now);
    let mut stops = Vec::with_capacity(tasks.len() * 2);
    loop {
        let mut best: Option<(f64, usize, bool, Point)> = None;
        for (i, t) in tasks.iter().enumerate() {
            let candidate = match (picked[i], dropped[i], t.pickup) {
                (false, _, Some((at, ready))) => {
                    let hand = (clock + p.travel(here, at) + p.pickup_service / 2.0).max(ready);
                    Some((hand, true, at))
                }
                (true, false, _) => {
                    let hand = clock + p.travel(here, t.dropoff) + p.dropoff_service / 2.0;
                    Some((hand, false, t.dropoff))
                }
                _ => None,
            };
            if let Some((hand, pickup, at)) = candidate {
                if best.as_ref().is_none_or(|b| hand < b.0) {
                    best = Some((hand, i, pickup, at));
                }
            }
        }
        let Some((hand, i, pickup, at)) = best else {
            return stops;
        };
        if pickup {
            picked[i] = true;
            clock = hand + p.pickup_service / 2.0;
        } else {
            dropped[i] = true;
            clock = hand + p.dropoff_service / 2.0;
        }
        here = at;
        stops.push(Visit {
            key: tasks[i].key,
            pickup,
            at: hand,
        });
    }
}

/// A priced (bundle, courier) pair.
struct Pair {
    /// Index into the candidate couriers.
    pub courier: usize,
    /// What it costs.
    pub cost: f64,
    /// The schedule it stands for.
    pub assignment: Assignment,
}

impl Priced for Pair {
    fn courier(&self) -> usize {
        self.courier
    }
    fn cost(&self) -> f64 {
        self.cost
    }
}

/// For each bundle, its feasible pairs with the nearest candidates, priced
/// as negated worth: every order served, more for orders close to their
/// deadline, less the extra cost of this courier over the bundle's best.
fn price_pairs(p: &Params, now: f64, bundles: &[Bundle], couriers: &[&Courier]) -> Vec<Vec<Pair>> {
    bundles
        .iter()
        .map(|b| {
            let mut near: Vec<(f64, usize)> = couriers
                .iter()
                .enumerate()
                .filter(|(_, c)| c.capacity >= b.orders.len())
                .filter(|(_, c)| b.orders.iter().all(|o| o.may_go_with(c.owner)))
                .map(|(i, c)| (c.free_at.max(now) + p.travel(c.pos, b.pickup), i))
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            near.truncate(CANDIDATES);
            let mut pairs: Vec<Pair> = near
                .into_iter()
                .filter_map(|(_, i)| {
                    let c = couriers[i];
                    let a = schedule(p, now, c.pos, c.free_at, b.pickup, &b.orders);
                    if a.pickup > c.off_time {
                        return None;
                    }
                    let cost = price(p, &a, &b.orders, now)?;
                    Some(Pair {
                        courier: i,
                        cost,
                        assignment: a,
                    })
                })
                .collect();
            let Some(best) = pairs.iter().min_by(|x, y| x.cost.total_cmp(&y.cost)) else {
                return pairs;
            };
            let base = best.cost;
            // Under scarcity a short trip serves more orders per courier hour.
            let route = ROUTE_WEIGHT * (best.assignment.free_at - best.assignment.depart);
            let urgency: f64 = b
                .orders
                .iter()
                .zip(&best.assignment.dropoffs)
                .map(|(o, d)| {
                    let slack = o.placed + p.max - d;
                    URGENT_WORTH * (1.0 - slack / URGENT_SLACK).clamp(0.0, 1.0)
                })
                .sum();
            let worth = ORDER_WORTH * b.orders.len() as f64 + urgency;
            for pair in &mut pairs {
                pair.cost = pair.cost - base - worth + route;
            }
            pairs
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params() -> Params {
        Params {
            speed: 200.0,
            whole_minutes: false,
            pickup_service: 2.0,
            dropoff_service: 2.0,
            target: 40.0,
            max: 90.0,
            max_is_hard: true,
            max_bundle: 3,
        }
    }

    fn order(
        key: usize,
        site: u32,
        at: (f64, f64),
        to: (f64, f64),
        placed: f64,
        ready: f64,
    ) -> Errand {
        Errand {
            key,
            site,
            pickup: Point { x: at.0, y: at.1 },
            dropoff: Point { x: to.0, y: to.1 },
            placed,
            ready,
            owner: None,
            barred: Vec::new(),
        }
    }

    fn courier(key: usize, at: (f64, f64), free_at: f64) -> Courier {
        Courier {
            key,
            pos: Point { x: at.0, y: at.1 },
            free_at,
            off_time: 1_000.0,
            capacity: 3,
            owner: None,
        }
    }

    #[test]
    fn a_courier_who_gave_an_order_back_is_not_sent_it_again() {
        let p = params();
        let mut o = order(0, 0, (0.0, 0.0), (100.0, 0.0), 0.0, 0.0);
        o.barred = vec![7];
        let mut near = courier(0, (0.0, 0.0), 0.0);
        near.owner = Some(7);
        let far = courier(1, (900.0, 0.0), 0.0);
        let plan = plan_with(&p, 0.0, &[o.clone()], &[near.clone(), far], &mut []);
        assert_eq!(plan.assignments.len(), 1);
        assert_eq!(
            plan.assignments[0].courier, 1,
            "the far courier, not the one who gave it back"
        );
        let plan = plan_with(&p, 0.0, &[o], &[near], &mut []);
        assert!(plan.assignments.is_empty());
    }

    #[test]
    fn a_courier_is_not_sent_long_before_the_food_is_ready() {
        let p = params();
        // Ready at 15; the courier is 400 m = 2 min away (+1 min service).
        let orders = [order(1, 1, (0.0, 0.0), (1000.0, 0.0), 0.0, 15.0)];
        let couriers = [courier(7, (400.0, 0.0), 0.0)];
        assert!(
            plan(&p, 0.0, &orders, &couriers).is_empty(),
            "waiting helps"
        );
        assert!(plan(&p, 10.0, &orders, &couriers).is_empty());
        let sent = plan(&p, 12.0, &orders, &couriers);
        assert_eq!(sent.len(), 1, "sent when the food is ready on arrival");
        assert_eq!(sent[0].courier, 7);
        assert!(sent[0].pickup >= 15.0);
    }

    #[test]
    fn two_orders_of_one_place_to_nearby_doors_share_a_courier_when_couriers_are_few() {
        let p = params();
        let orders = [
            order(1, 1, (0.0, 0.0), (1000.0, 0.0), 0.0, 1.0),
            order(2, 1, (0.0, 0.0), (1100.0, 0.0), 0.0, 1.0),
        ];
        let couriers = [courier(7, (200.0, 0.0), 0.0)];
        let sent = plan(&p, 1.0, &orders, &couriers);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].orders, vec![1, 2], "nearer door first");
    }

    #[test]
    fn a_route_picks_up_before_it_drops_off_and_never_before_ready() {
        let p = params();
        let station = Point { x: 0.0, y: 0.0 };
        let tasks = [
            RouteTask {
                key: 1,
                pickup: Some((station, 10.0)),
                dropoff: Point { x: 400.0, y: 0.0 },
            },
            RouteTask {
                key: 2,
                pickup: None,
                dropoff: Point { x: 0.0, y: 200.0 },
            },
        ];
        let stops = route(&p, 0.0, station, &tasks);
        let keys: Vec<(usize, bool)> = stops.iter().map(|s| (s.key, s.pickup)).collect();
        // What it carries goes first (1 min away), then back for the pickup.
        assert_eq!(keys, vec![(2, false), (1, true), (1, false)]);
        assert_eq!(stops[0].at, 2.0, "1 min travel + half the service");
        assert!(stops[1].at >= 10.0, "never before ready");
        assert_eq!(stops[2].at, stops[1].at + 1.0 + 2.0 + 1.0);
    }

    #[test]
    fn a_later_order_joins_a_bundle_at_its_pickup_place() {
        let p = params();
        let first = order(1, 1, (0.0, 0.0), (1000.0, 0.0), 0.0, 10.0);
        let mut en_route = vec![EnRoute {
            courier: 7,
            site: 1,
            pickup: first.pickup,
            depart: 0.0,
            arrive: 9.0,
            pickup_at: 10.0,
            orders: vec![first],
            capacity: 3,
            off_time: 100.0,
            owner: None,
        }];
        let later = order(2, 1, (0.0, 0.0), (1200.0, 0.0), 3.0, 10.0);
        let elsewhere = order(3, 2, (5000.0, 0.0), (5200.0, 0.0), 3.0, 10.0);

        let plan = plan_with(&p, 4.0, &[later, elsewhere], &[], &mut en_route);

        assert_eq!(plan.extensions.len(), 1);
        assert_eq!(plan.extensions[0].courier, 7);
        assert_eq!(plan.extensions[0].orders, vec![1, 2]);
        assert_eq!(plan.extensions[0].pickup, 10.0, "the pickup does not move");
        assert!(
            plan.assignments.is_empty(),
            "no courier for the other place"
        );
        assert_eq!(en_route[0].orders.len(), 2);
    }

    #[test]
    fn a_busy_courier_is_never_sent_and_nobody_gets_their_own_order() {
        let p = params();
        let mut mine = order(1, 1, (0.0, 0.0), (500.0, 0.0), 0.0, 0.0);
        mine.owner = Some(42);
        let mut me = courier(7, (0.0, 0.0), 0.0);
        me.owner = Some(42);
        let busy = courier(8, (0.0, 0.0), 5.0);
        assert!(plan(&p, 0.0, &[mine.clone()], &[me.clone(), busy]).is_empty());
        let other = courier(9, (3000.0, 0.0), 0.0);
        let sent = plan(&p, 0.0, &[mine], &[me, other]);
        assert_eq!(sent.iter().map(|a| a.courier).collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn past_a_soft_limit_an_order_is_still_sent_at_once() {
        let mut p = params();
        // Placed 100 minutes ago: past `max` whoever takes it.
        let orders = [order(1, 1, (0.0, 0.0), (500.0, 0.0), -100.0, -90.0)];
        let couriers = [courier(7, (1000.0, 0.0), 0.0)];
        assert!(plan(&p, 0.0, &orders, &couriers).is_empty(), "hard: never");
        p.max_is_hard = false;
        let sent = plan(&p, 0.0, &orders, &couriers);
        assert_eq!(sent.len(), 1, "soft: late beats never");
        assert_eq!(sent[0].depart, 0.0);

        // Still deliverable in time by someone at the pickup: this far-away
        // courier, who would be late, is not sent.
        let fresh = [order(2, 1, (0.0, 0.0), (500.0, 0.0), -80.0, 0.0)];
        let far = [courier(8, (3000.0, 0.0), 0.0)];
        assert!(!hopeless(&p, 0.0, &fresh[0]));
        assert!(plan(&p, 0.0, &fresh, &far).is_empty(), "avoidably late: no");
    }

    #[test]
    fn no_pickup_after_the_shift_ends() {
        let p = params();
        let orders = [order(1, 1, (0.0, 0.0), (500.0, 0.0), 0.0, 10.0)];
        let mut leaving = courier(7, (0.0, 0.0), 0.0);
        leaving.off_time = 5.0;
        for now in 0..12 {
            assert!(plan(&p, f64::from(now), &orders, &[leaving.clone()]).is_empty());
        }
    }

    fn instance() -> impl Strategy<Value = (Vec<Errand>, Vec<Courier>, f64)> {
        let orders = prop::collection::vec(
            (
                0u32..4,
                0.0..3000.0f64,
                0.0..3000.0f64,
                0.0..30.0f64,
                0.0..25.0f64,
                prop::option::of(0u64..3),
            ),
            1..12,
        );
        let couriers = prop::collection::vec(
            (
                0.0..3000.0f64,
                0.0..3000.0f64,
                0.0..40.0f64,
                10.0..80.0f64,
                1usize..4,
                prop::option::of(0u64..3),
            ),
            1..8,
        );
        (orders, couriers, 0.0..40.0f64).prop_map(|(os, cs, now)| {
            let sites = [(0.0, 0.0), (2500.0, 0.0), (0.0, 2500.0), (2500.0, 2500.0)];
            let orders = os
                .into_iter()
                .enumerate()
                .map(|(k, (s, x, y, placed, prep, owner))| Errand {
                    owner,
                    barred: Vec::new(),
                    ..order(
                        k,
                        s,
                        sites[s as usize],
                        (x, y),
                        placed.min(now),
                        placed.min(now) + prep,
                    )
                })
                .collect();
            let couriers = cs
                .into_iter()
                .enumerate()
                .map(|(k, (x, y, free, off, cap, owner))| Courier {
                    key: k,
                    pos: Point { x, y },
                    free_at: free,
                    off_time: off,
                    capacity: cap,
                    owner,
                })
                .collect();
            (orders, couriers, now)
        })
    }

    proptest! {
        #[test]
        fn every_plan_keeps_the_rules((orders, couriers, now) in instance()) {
            let p = params();
            let sent = plan(&p, now, &orders, &couriers);
            prop_assert_eq!(&sent, &plan(&p, now, &orders, &couriers), "deterministic");
            let mut couriers_used = std::collections::HashSet::new();
            let mut orders_used = std::collections::HashSet::new();
            for a in &sent {
                let c = &couriers[a.courier];
                prop_assert!(couriers_used.insert(a.courier), "one bundle per courier");
                prop_assert!(c.free_at <= now, "only a free courier is sent");
                prop_assert!(a.orders.len() <= c.capacity && a.orders.len() <= p.max_bundle);
                prop_assert!(a.pickup <= c.off_time, "pickup within the shift");
                let site = orders[a.orders[0]].site;
                for (k, d) in a.orders.iter().zip(&a.dropoffs) {
                    let o = &orders[*k];
                    prop_assert!(orders_used.insert(*k), "one courier per order");
                    prop_assert_eq!(o.site, site, "one pickup place per bundle");
                    prop_assert!(a.pickup >= o.ready, "never before ready");
                    prop_assert!(d - o.placed <= p.max + 1e-9, "never past max");
                    prop_assert!(o.owner.is_none() || o.owner != c.owner, "never their own order");
                }
            }
        }
    }
}
