//! Replays an MDRP instance through a dispatch policy on a simulated clock:
//! a planning round every minute, orders known from their placement,
//! couriers that follow every instruction exactly by the instance's rules.
//! The planner is the same code the live dispatcher runs.

use std::time::Instant;

use super::mdrp::{BundleRecord, Instance, Move, OrderRecord, Solution, Stop};
use crate::dispatch::planner::{self, Assignment, Courier, EnRoute, Errand, Params, Plan, Point};

/// Which dispatcher to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// lastmile's planner.
    Planner,
    /// The naive baseline: each order at once, first come first served, to
    /// the nearest idle on-duty courier, no bundling.
    Greedy,
}

/// What a replay produced.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The solution (what the evaluator reads).
    pub solution: Solution,
    /// Wall time of each planning round, milliseconds.
    pub round_ms: Vec<f64>,
}

/// Minutes between planning rounds.
const ROUND_EVERY: f64 = 1.0;

struct CourierState {
    pos: Point,
    at: Stop,
    free_at: f64,
    /// The bundle on its way to the pickup (orders may still join it).
    pending: Option<Pending>,
}

/// A bundle not picked up yet; written to the solution once it is.
struct Pending {
    assignment: Assignment,
    restaurant: usize,
    /// When it was last decided (a joining order moves it).
    decided_at: f64,
}

/// The planner's parameters for an instance, bundles of at most
/// `max_bundle`; `late`: orders that cannot make `max` any more are
/// delivered late rather than left undelivered.
fn planner_params(inst: &Instance, max_bundle: usize, late: bool) -> Params {
    Params {
        speed: inst.params.speed,
        whole_minutes: true,
        pickup_service: inst.params.pickup_service,
        dropoff_service: inst.params.dropoff_service,
        target: inst.params.target,
        max: inst.params.max,
        max_is_hard: !late,
        max_bundle,
    }
}

/// Runs `policy` over `inst` with bundles of at most `max_bundle` orders;
/// `late`: an order that can no longer make `max` is still delivered (as
/// the live service does) instead of being given up.
pub fn replay(inst: &Instance, policy: Policy, max_bundle: usize, late: bool) -> Replay {
    let params = planner_params(inst, max_bundle, late);
    let mut couriers: Vec<CourierState> = inst
        .couriers
        .iter()
        .map(|c| CourierState {
            pos: c.start,
            at: Stop::Start,
            free_at: c.on,
            pending: None,
        })
        .collect();
    let mut by_placement: Vec<usize> = (0..inst.orders.len()).collect();
    by_placement.sort_by(|a, b| {
        inst.orders[*a]
            .placed
            .total_cmp(&inst.orders[*b].placed)
            .then(a.cmp(b))
    });
    let end = inst
        .couriers
        .iter()
        .map(|c| c.off)
        .chain(inst.orders.iter().map(|o| o.placed + inst.params.max))
        .fold(0.0, f64::max);
    let mut waiting: Vec<usize> = Vec::new();
    let mut next = 0;
    let mut solution = Solution::default();
    let mut round_ms = Vec::new();
    let mut now = 0.0;
    while now <= end {
        for c in couriers.iter_mut() {
            if c.pending
                .as_ref()
                .is_some_and(|b| b.assignment.pickup <= now)
            {
                finish(&params, c, &mut solution);
            }
        }
        while next < by_placement.len() && inst.orders[by_placement[next]].placed <= now {
            waiting.push(by_placement[next]);
            next += 1;
        }
        // An order that can no longer be delivered in time is given up
        // (unless late deliveries are allowed).
        waiting.retain(|&o| {
            late || now + inst.params.pickup_service < inst.orders[o].placed + inst.params.max
        });
        if !waiting.is_empty() {
            let started = Instant::now();
            let plan = match policy {
                Policy::Planner => plan_round(inst, &params, now, &waiting, &couriers),
                Policy::Greedy => Plan {
                    assignments: greedy_round(inst, &params, now, &waiting, &couriers),
                    extensions: Vec::new(),
                },
            };
            round_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            for a in plan.extensions {
                waiting.retain(|o| !a.orders.contains(o));
                extend(inst, now, a, &mut couriers);
            }
            for a in plan.assignments {
                waiting.retain(|o| !a.orders.contains(o));
                start(inst, now, a, &mut couriers, &mut solution);
            }
        }
        now += ROUND_EVERY;
    }
    for c in couriers.iter_mut() {
        finish(&params, c, &mut solution);
    }
    Replay { solution, round_ms }
}

fn on_duty(inst: &Instance, now: f64) -> impl Iterator<Item = usize> + '_ {
    inst.couriers
        .iter()
        .enumerate()
        .filter(move |(_, c)| c.on <= now && now < c.off)
        .map(|(i, _)| i)
}

fn as_order(inst: &Instance, i: usize) -> Errand {
    let o = &inst.orders[i];
    Errand {
        key: i,
        site: o.restaurant as u32,
        pickup: inst.restaurants[o.restaurant].1,
        dropoff: o.dropoff,
        placed: o.placed,
        ready: o.ready,
        owner: None,
        barred: Vec::new(),
    }
}

fn plan_round(
    inst: &Instance,
    params: &Params,
    now: f64,
    waiting: &[usize],
    couriers: &[CourierState],
) -> Plan {
    let orders: Vec<Errand> = waiting.iter().map(|&i| as_order(inst, i)).collect();
    let available: Vec<Courier> = on_duty(inst, now)
        .map(|i| Courier {
            key: i,
            pos: couriers[i].pos,
            free_at: couriers[i].free_at,
            off_time: inst.couriers[i].off,
            capacity: params.max_bundle,
            owner: None,
        })
        .collect();
    let mut en_route: Vec<EnRoute> = couriers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let b = c.pending.as_ref()?;
            Some(EnRoute {
                courier: i,
                site: b.restaurant as u32,
                pickup: inst.restaurants[b.restaurant].1,
                depart: b.assignment.depart,
                arrive: b.assignment.arrive,
                pickup_at: b.assignment.pickup,
                orders: b
                    .assignment
                    .orders
                    .iter()
                    .map(|&o| as_order(inst, o))
                    .collect(),
                capacity: params.max_bundle,
                off_time: inst.couriers[i].off,
                owner: None,
            })
        })
        .collect();
    planner::plan_with(params, now, &orders, &available, &mut en_route)
}

/// First come first served: each waiting order to the nearest idle courier
/// who can still deliver it in time (with `--late`: at all); an order
/// nobody idle can serve waits (and is given up when too old).
fn greedy_round(
    inst: &Instance,
    params: &Params,
    now: f64,
    waiting: &[usize],
    couriers: &[CourierState],
) -> Vec<Assignment> {
    let mut idle: Vec<usize> = on_duty(inst, now)
        .filter(|&i| couriers[i].free_at <= now)
        .collect();
    let mut sent = Vec::new();
    for &oi in waiting {
        if idle.is_empty() {
            break;
        }
        let o = &inst.orders[oi];
        let site = inst.restaurants[o.restaurant].1;
        let order = Errand {
            key: oi,
            site: o.restaurant as u32,
            pickup: site,
            dropoff: o.dropoff,
            placed: o.placed,
            ready: o.ready,
            owner: None,
            barred: Vec::new(),
        };
        let best = idle
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let a = planner::schedule(
                    params,
                    now,
                    couriers[c].pos,
                    couriers[c].free_at,
                    site,
                    &[&order],
                );
                (k, c, a)
            })
            .filter(|(_, c, a)| {
                let in_time = a.dropoffs[0] - o.placed <= params.max;
                a.pickup <= inst.couriers[*c].off && (in_time || !params.max_is_hard)
            })
            .min_by(|x, y| x.2.arrive.total_cmp(&y.2.arrive));
        if let Some((k, c, mut a)) = best {
            a.courier = c;
            idle.swap_remove(k);
            sent.push(a);
        }
    }
    sent
}

/// The courier sets off for the pickup place of a new bundle.
fn start(
    inst: &Instance,
    now: f64,
    a: Assignment,
    couriers: &mut [CourierState],
    sol: &mut Solution,
) {
    let Some(&first) = a.orders.first() else {
        return;
    };
    let restaurant = inst.orders[first].restaurant;
    let c = &mut couriers[a.courier];
    sol.moves.push(Move {
        courier: a.courier,
        departure: a.depart,
        origin: c.at,
        destination: Stop::Restaurant(restaurant),
    });
    c.at = Stop::Restaurant(restaurant);
    settle_plan(inst, c, &a);
    c.pending = Some(Pending {
        assignment: a,
        restaurant,
        decided_at: now,
    });
}

/// More orders join a bundle at its pickup place.
fn extend(inst: &Instance, now: f64, a: Assignment, couriers: &mut [CourierState]) {
    let c = &mut couriers[a.courier];
    settle_plan(inst, c, &a);
    if let Some(b) = c.pending.as_mut() {
        b.assignment = a;
        b.decided_at = now;
    }
}

/// Where and when the courier will be free after `a`.
fn settle_plan(inst: &Instance, c: &mut CourierState, a: &Assignment) {
    c.free_at = a.free_at;
    if let Some(&last) = a.orders.last() {
        c.pos = inst.orders[last].dropoff;
    }
}

/// The courier picked the bundle up: its orders, drop-offs and moves go
/// into the solution.
fn finish(params: &Params, c: &mut CourierState, sol: &mut Solution) {
    let Some(Pending {
        assignment: a,
        restaurant,
        decided_at,
    }) = c.pending.take()
    else {
        return;
    };
    let mut leave = a.pickup + params.pickup_service / 2.0;
    let mut from = Stop::Restaurant(restaurant);
    for (&o, &drop) in a.orders.iter().zip(&a.dropoffs) {
        sol.moves.push(Move {
            courier: a.courier,
            departure: leave,
            origin: from,
            destination: Stop::Order(o),
        });
        sol.orders.push(OrderRecord {
            order: o,
            pickup: a.pickup,
            dropoff: drop,
            courier: a.courier,
        });
        leave = drop + params.dropoff_service / 2.0;
        from = Stop::Order(o);
    }
    sol.bundles.push(BundleRecord {
        assigned_at: decided_at,
        pickup: a.pickup,
        courier: a.courier,
        orders: a.orders.clone(),
    });
    c.at = from;
}
