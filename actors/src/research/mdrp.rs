//! The Meal Delivery Routing Problem's files (the public Grubhub
//! instances): reading an instance, writing and reading the three solution
//! files in the evaluator's format, checking a solution against the rules,
//! and its metrics. Pure apart from reading and writing those files.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::dispatch::planner::Point;

/// Why an instance or a solution could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MdrpError {
    /// A file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("{path}:{line}: {why}")]
    Format {
        /// Which file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// An instance's parameters line.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceParams {
    /// Metres per minute.
    pub speed: f64,
    /// Pickup service minutes.
    pub pickup_service: f64,
    /// Drop-off service minutes.
    pub dropoff_service: f64,
    /// Target click-to-door.
    pub target: f64,
    /// Maximum click-to-door.
    pub max: f64,
    /// Pay per delivered order.
    pub pay_per_order: f64,
    /// Guaranteed pay per shift hour.
    pub pay_per_hour: f64,
}

/// An order of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct MdrpOrder {
    /// Its id (`o1`…).
    pub id: String,
    /// Drop-off position.
    pub dropoff: Point,
    /// Placement minute.
    pub placed: f64,
    /// Index of its restaurant.
    pub restaurant: usize,
    /// Ready minute.
    pub ready: f64,
}

/// A courier of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct MdrpCourier {
    /// Its id (`c1`…).
    pub id: String,
    /// Where the shift starts.
    pub start: Point,
    /// Shift start minute.
    pub on: f64,
    /// Shift end minute (no pickup after it).
    pub off: f64,
}

/// A whole instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The parameters.
    pub params: InstanceParams,
    /// Restaurant ids and positions.
    pub restaurants: Vec<(String, Point)>,
    /// The orders.
    pub orders: Vec<MdrpOrder>,
    /// The couriers.
    pub couriers: Vec<MdrpCourier>,
}

impl Instance {
    /// The least click-to-door order `i` can have: a courier already
    /// waiting at its restaurant when it is placed takes it straight to the
    /// door. No dispatcher does better, bundles or not.
    pub fn ctd_bound(&self, i: usize) -> f64 {
        let (o, p) = (&self.orders[i], &self.params);
        let site = self.restaurants[o.restaurant].1;
        self.earliest_pickup(i)
            + p.pickup_service / 2.0
            + self.travel(site, o.dropoff)
            + p.dropoff_service / 2.0
            - o.placed
    }

    fn earliest_pickup(&self, i: usize) -> f64 {
        let o = &self.orders[i];
        o.ready.max(o.placed + self.params.pickup_service / 2.0)
    }

    /// Could order `i` be delivered within `max` at all: within its
    /// [`Self::ctd_bound`], by a courier on shift for the pickup?
    pub fn deliverable(&self, i: usize) -> bool {
        let pickup = self.earliest_pickup(i);
        let slack = self.params.max - self.ctd_bound(i);
        slack >= -1e-9
            && self
                .couriers
                .iter()
                .any(|c| c.on <= pickup + slack && c.off >= pickup)
    }

    /// Minutes from `a` to `b` by the instance's rule.
    pub fn travel(&self, a: Point, b: Point) -> f64 {
        (a.distance(b) / self.params.speed).ceil()
    }
}

/// The rows of a tab-separated file after its header, split into fields.
fn rows(dir: &Path, name: &str) -> Result<Vec<(usize, Vec<String>)>, MdrpError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|source| MdrpError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(text
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split_whitespace().map(str::to_owned).collect()))
        .collect())
}

/// Minutes an instance may span (a week; the published days span one).
const TIMES: RangeInclusive<f64> = 0.0..=10_080.0;
/// Minutes in a solution: late deliveries may end after the last shift.
const SOLUTION_TIMES: RangeInclusive<f64> = 0.0..=20_160.0;
/// Metres from the instance's origin (1 000 km).
const COORDINATES: RangeInclusive<f64> = -1.0e6..=1.0e6;
/// Service, target and maximum minutes.
const DURATIONS: RangeInclusive<f64> = 0.0..=1_440.0;
/// Metres per minute (up to 6 000 km/h).
const SPEEDS: RangeInclusive<f64> = 0.001..=1.0e5;
/// Pay per order or per hour.
const PAY: RangeInclusive<f64> = 0.0..=1.0e6;

struct Fields<'a> {
    path: PathBuf,
    line: usize,
    fields: &'a [String],
}

impl Fields<'_> {
    fn bad(&self, why: impl Into<String>) -> MdrpError {
        MdrpError::Format {
            path: self.path.clone(),
            line: self.line,
            why: why.into(),
        }
    }

    fn text(&self, i: usize) -> Result<&str, MdrpError> {
        self.fields
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| self.bad(format!("expected at least {} fields", i + 1)))
    }

    /// Field `i` as a number within `range`: the replay's clock and
    /// distances are f64 and must stay where a minute still counts (an
    /// off time of 1e17 would stop time from advancing).
    fn number(&self, i: usize, range: RangeInclusive<f64>) -> Result<f64, MdrpError> {
        let t = self.text(i)?;
        let value = t
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.bad(format!("field {} is not a number: {t:?}", i + 1)))?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(self.bad(format!(
                "field {} is {t}, outside {} to {}",
                i + 1,
                range.start(),
                range.end()
            )))
        }
    }
}

fn fields<'a>(dir: &Path, name: &str, line: usize, fields: &'a [String]) -> Fields<'a> {
    Fields {
        path: dir.join(name),
        line,
        fields,
    }
}

/// Reads an instance directory (orders, restaurants, couriers, parameters).
pub fn load(dir: &Path) -> Result<Instance, MdrpError> {
    let params_rows = rows(dir, "instance_parameters.txt")?;
    let (line, first) = params_rows.first().ok_or_else(|| MdrpError::Format {
        path: dir.join("instance_parameters.txt"),
        line: 2,
        why: "no data line".into(),
    })?;
    let f = fields(dir, "instance_parameters.txt", *line, first);
    let params = InstanceParams {
        speed: f.number(0, SPEEDS)?,
        pickup_service: f.number(1, DURATIONS)?,
        dropoff_service: f.number(2, DURATIONS)?,
        target: f.number(3, DURATIONS)?,
        max: f.number(4, DURATIONS)?,
        pay_per_order: f.number(5, PAY)?,
        pay_per_hour: f.number(6, PAY)?,
    };
    let mut restaurants = Vec::new();
    let mut restaurant_index = HashMap::new();
    for (line, r) in rows(dir, "restaurants.txt")? {
        let f = fields(dir, "restaurants.txt", line, &r);
        let id = f.text(0)?.to_owned();
        restaurant_index.insert(id.clone(), restaurants.len());
        restaurants.push((
            id,
            Point {
                x: f.number(1, COORDINATES)?,
                y: f.number(2, COORDINATES)?,
            },
        ));
    }
    let mut orders = Vec::new();
    for (line, r) in rows(dir, "orders.txt")? {
        let f = fields(dir, "orders.txt", line, &r);
        let restaurant = *restaurant_index
            .get(f.text(4)?)
            .ok_or_else(|| f.bad(format!("unknown restaurant {}", f.fields[4])))?;
        orders.push(MdrpOrder {
            id: f.text(0)?.to_owned(),
            dropoff: Point {
                x: f.number(1, COORDINATES)?,
                y: f.number(2, COORDINATES)?,
            },
            placed: f.number(3, TIMES)?,
            restaurant,
            ready: f.number(5, TIMES)?,
        });
    }
    let mut couriers = Vec::new();
    for (line, r) in rows(dir, "couriers.txt")? {
        let f = fields(dir, "couriers.txt", line, &r);
        couriers.push(MdrpCourier {
            id: f.text(0)?.to_owned(),
            start: Point {
                x: f.number(1, COORDINATES)?,
                y: f.number(2, COORDINATES)?,
            },
            on: f.number(3, TIMES)?,
            off: f.number(4, TIMES)?,
        });
    }
    Ok(Instance {
        params,
        restaurants,
        orders,
        couriers,
    })
}

/// Where a courier is, for the moves file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The courier's shift start position (`0` in the file).
    Start,
    /// A restaurant (index).
    Restaurant(usize),
    /// An order's drop-off (index).
    Order(usize),
}

/// One bundle sent to a courier.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleRecord {
    /// When it was decided.
    pub assigned_at: f64,
    /// The pickup instant.
    pub pickup: f64,
    /// The courier (index).
    pub courier: usize,
    /// Orders (indices) in delivery sequence.
    pub orders: Vec<usize>,
}

/// One delivered order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    /// The order (index).
    pub order: usize,
    /// Pickup instant.
    pub pickup: f64,
    /// Drop-off instant.
    pub dropoff: f64,
    /// The courier (index).
    pub courier: usize,
}

/// One move of a courier.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// The courier (index).
    pub courier: usize,
    /// When they leave.
    pub departure: f64,
    /// From.
    pub origin: Stop,
    /// To.
    pub destination: Stop,
}

/// A solution: what the evaluator reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Solution {
    /// Bundles, in decision order.
    pub bundles: Vec<BundleRecord>,
    /// Delivered orders.
    pub orders: Vec<OrderRecord>,
    /// Every move of every courier.
    pub moves: Vec<Move>,
}

fn minutes(t: f64) -> String {
    format!("{}", t.round() as i64)
}

impl Solution {
    /// Writes the three solution files into `dir` (created if needed).
    pub fn write(&self, inst: &Instance, dir: &Path) -> Result<(), MdrpError> {
        let io = |path: PathBuf| move |source| MdrpError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_owned()))?;
        let mut a = String::from("assignment_time pickup_time courier orders\n");
        for b in &self.bundles {
            let _ = write!(
                a,
                "{} {} {}",
                minutes(b.assigned_at),
                minutes(b.pickup),
                inst.couriers[b.courier].id
            );
            for o in &b.orders {
                let _ = write!(a, " {}", inst.orders[*o].id);
            }
            a.push('\n');
        }
        let mut o =
            String::from("order placement_time ready_time pickup_time dropoff_time courier\n");
        for r in &self.orders {
            let order = &inst.orders[r.order];
            let _ = writeln!(
                o,
                "{} {} {} {} {} {}",
                order.id,
                minutes(order.placed),
                minutes(order.ready),
                minutes(r.pickup),
                minutes(r.dropoff),
                inst.couriers[r.courier].id
            );
        }
        let mut moves: Vec<&Move> = self.moves.iter().collect();
        moves.sort_by(|x, y| {
            x.courier
                .cmp(&y.courier)
                .then(x.departure.total_cmp(&y.departure))
        });
        let mut c = String::from("courier departure_time origin destination\n");
        let name = |s: Stop| match s {
            Stop::Start => "0".to_owned(),
            Stop::Restaurant(i) => inst.restaurants[i].0.clone(),
            Stop::Order(i) => inst.orders[i].id.clone(),
        };
        for m in moves {
            let _ = writeln!(
                c,
                "{} {} {} {}",
                inst.couriers[m.courier].id,
                minutes(m.departure),
                name(m.origin),
                name(m.destination)
            );
        }
        for (file, text) in [
            ("solution_info_assignments.txt", a),
            ("solution_info_orders.txt", o),
            ("solution_info_couriers.txt", c),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, text).map_err(io(path))?;
        }
        Ok(())
    }

    /// Reads the three solution files of `dir` back against `inst`.
    pub fn read(inst: &Instance, dir: &Path) -> Result<Self, MdrpError> {
        let order_ix: HashMap<&str, usize> = inst
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.as_str(), i))
            .collect();
        let courier_ix: HashMap<&str, usize> = inst
            .couriers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.as_str(), i))
            .collect();
        let rest_ix: HashMap<&str, usize> = inst
            .restaurants
            .iter()
            .enumerate()
            .map(|(i, r)| (r.0.as_str(), i))
            .collect();
        let mut sol = Solution::default();
        let lookup =
            |f: &Fields, map: &HashMap<&str, usize>, i: usize| -> Result<usize, MdrpError> {
                let t = f.text(i)?;
                map.get(t)
                    .copied()
                    .ok_or_else(|| f.bad(format!("unknown id {t}")))
            };
        for (line, r) in rows(dir, "solution_info_assignments.txt")? {
            let f = fields(dir, "solution_info_assignments.txt", line, &r);
            let orders = (3..r.len())
                .map(|i| lookup(&f, &order_ix, i))
                .collect::<Result<Vec<_>, _>>()?;
            sol.bundles.push(BundleRecord {
                assigned_at: f.number(0, SOLUTION_TIMES)?,
                pickup: f.number(1, SOLUTION_TIMES)?,
                courier: lookup(&f, &courier_ix, 2)?,
                orders,
            });
        }
        for (line, r) in rows(dir, "solution_info_orders.txt")? {
            let f = fields(dir, "solution_info_orders.txt", line, &r);
            sol.orders.push(OrderRecord {
                order: lookup(&f, &order_ix, 0)?,
                pickup: f.number(3, SOLUTION_TIMES)?,
                dropoff: f.number(4, SOLUTION_TIMES)?,
                courier: lookup(&f, &courier_ix, 5)?,
            });
        }
        for (line, r) in rows(dir, "solution_info_couriers.txt")? {
            let f = fields(dir, "solution_info_couriers.txt", line, &r);
            let stop = |i: usize| -> Result<Stop, MdrpError> {
                let t = f.text(i)?;
                if t == "0" {
                    Ok(Stop::Start)
                } else if let Some(&o) = order_ix.get(t) {
                    Ok(Stop::Order(o))
                } else if let Some(&r) = rest_ix.get(t) {
                    Ok(Stop::Restaurant(r))
                } else {
                    Err(f.bad(format!("unknown stop {t}")))
                }
            };
            sol.moves.push(Move {
                courier: lookup(&f, &courier_ix, 0)?,
                departure: f.number(1, SOLUTION_TIMES)?,
                origin: stop(2)?,
                destination: stop(3)?,
            });
        }
        Ok(sol)
    }
}

/// Everything wrong with a solution (empty: feasible); `late` allows
/// deliveries past `max` (the `--late` relaxation).
pub fn check(inst: &Instance, sol: &Solution, late: bool) -> Vec<String> {
    let mut errors = Vec::new();
    let p = &inst.params;
    let mut seen = vec![false; inst.orders.len()];
    let mut record_of: HashMap<usize, &OrderRecord> = HashMap::new();
    for r in &sol.orders {
        if record_of.insert(r.order, r).is_some() {
            errors.push(format!("order {} delivered twice", inst.orders[r.order].id));
        }
        let o = &inst.orders[r.order];
        if !late && r.dropoff - o.placed > p.max + 1e-9 {
            errors.push(format!(
                "order {} click-to-door {} > {}",
                o.id,
                r.dropoff - o.placed,
                p.max
            ));
        }
    }
    for b in &sol.bundles {
        let c = &inst.couriers[b.courier];
        if b.pickup > c.off + 1e-9 {
            errors.push(format!(
                "courier {} picks up at {} after shift end {}",
                c.id, b.pickup, c.off
            ));
        }
        let mut restaurant = None;
        let mut last_drop: Option<f64> = None;
        for &oi in &b.orders {
            let o = &inst.orders[oi];
            if std::mem::replace(&mut seen[oi], true) {
                errors.push(format!("order {} assigned twice", o.id));
            }
            if b.assigned_at < o.placed {
                errors.push(format!(
                    "order {} assigned at {} before placement {}",
                    o.id, b.assigned_at, o.placed
                ));
            }
            if b.pickup < o.ready {
                errors.push(format!(
                    "order {} picked up at {} before ready {}",
                    o.id, b.pickup, o.ready
                ));
            }
            if *restaurant.get_or_insert(o.restaurant) != o.restaurant {
                errors.push(format!("bundle of courier {} mixes restaurants", c.id));
            }
            match record_of.get(&oi) {
                Some(r) => {
                    if r.courier != b.courier || (r.pickup - b.pickup).abs() > 1e-9 {
                        errors.push(format!("order {} record disagrees with its bundle", o.id));
                    }
                    if let Some(prev) = last_drop {
                        if r.dropoff - prev < p.dropoff_service - 1e-9 {
                            errors.push(format!(
                                "order {} dropped {} after the previous one",
                                o.id,
                                r.dropoff - prev
                            ));
                        }
                    }
                    last_drop = Some(r.dropoff);
                }
                None => errors.push(format!("order {} assigned but never delivered", o.id)),
            }
        }
    }
    for r in &sol.orders {
        if !seen[r.order] {
            errors.push(format!(
                "order {} delivered without a bundle",
                inst.orders[r.order].id
            ));
        }
    }
    errors.extend(check_moves(inst, sol, &record_of));
    errors
}

/// The moves of each courier form one chain that puts them at each
/// restaurant half a service before the pickup and at each order half a
/// service before its drop-off, never leaving a stop early.
fn check_moves(
    inst: &Instance,
    sol: &Solution,
    record_of: &HashMap<usize, &OrderRecord>,
) -> Vec<String> {
    let p = &inst.params;
    let mut errors = Vec::new();
    let mut pickups: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
    for b in &sol.bundles {
        if let Some(&first) = b.orders.first() {
            pickups
                .entry((b.courier, inst.orders[first].restaurant))
                .or_default()
                .push(b.pickup);
        }
    }
    let mut by_courier: HashMap<usize, Vec<&Move>> = HashMap::new();
    for m in &sol.moves {
        by_courier.entry(m.courier).or_default().push(m);
    }
    for (ci, mut moves) in by_courier {
        moves.sort_by(|a, b| a.departure.total_cmp(&b.departure));
        let c = &inst.couriers[ci];
        let mut at = Stop::Start;
        let mut free_from = c.on;
        let position = |s: Stop| match s {
            Stop::Start => c.start,
            Stop::Restaurant(r) => inst.restaurants[r].1,
            Stop::Order(o) => inst.orders[o].dropoff,
        };
        for m in moves {
            if m.origin != at {
                errors.push(format!(
                    "courier {} leaves {:?} but is at {:?}",
                    c.id, m.origin, at
                ));
            }
            if m.departure + 1e-9 < free_from {
                errors.push(format!(
                    "courier {} leaves at {} before {}",
                    c.id, m.departure, free_from
                ));
            }
            let arrival = m.departure + inst.travel(position(m.origin), position(m.destination));
            free_from = match m.destination {
                Stop::Start => arrival,
                Stop::Restaurant(r) => {
                    let pick = pickups.get_mut(&(ci, r)).and_then(|list| {
                        let i = list
                            .iter()
                            .position(|t| *t + 1e-9 >= arrival + p.pickup_service / 2.0)?;
                        Some(list.remove(i))
                    });
                    match pick {
                        Some(t) => t + p.pickup_service / 2.0,
                        None => {
                            errors.push(format!(
                                "courier {} reaches restaurant {} at {} with no pickup after",
                                c.id, inst.restaurants[r].0, arrival
                            ));
                            arrival
                        }
                    }
                }
                Stop::Order(o) => match record_of.get(&o) {
                    Some(r) if r.courier == ci => {
                        if r.dropoff + 1e-9 < arrival + p.dropoff_service / 2.0 {
                            errors.push(format!(
                                "order {} handed over at {} before arrival {} + service",
                                inst.orders[o].id, r.dropoff, arrival
                            ));
                        }
                        r.dropoff + p.dropoff_service / 2.0
                    }
                    _ => {
                        errors.push(format!(
                            "courier {} visits order {} it does not deliver",
                            c.id, inst.orders[o].id
                        ));
                        arrival
                    }
                },
            };
            at = m.destination;
        }
    }
    errors
}

/// A solution's figures (the README of the instances defines each).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Orders in the instance.
    pub orders: usize,
    /// Orders delivered.
    pub delivered: usize,
    /// Orders that could be delivered within `max` at all.
    pub deliverable: usize,
    /// Deliveries past `max` (only with `--late`).
    pub past_max: usize,
    /// Click-to-door, mean minutes.
    pub ctd_mean: f64,
    /// Click-to-door, 90th percentile.
    pub ctd_p90: f64,
    /// The mean of [`Instance::ctd_bound`] over the delivered orders: what
    /// no dispatcher can beat on them.
    pub ctd_bound_mean: f64,
    /// Mean minutes past the 40-minute target.
    pub overage_mean: f64,
    /// Ready-to-pickup, mean minutes.
    pub r2p_mean: f64,
    /// Ready-to-pickup, 90th percentile.
    pub r2p_p90: f64,
    /// (driving + service) / shift time.
    pub utilisation: f64,
    /// Delivered orders per courier shift hour.
    pub orders_per_courier_hour: f64,
    /// Courier pay per delivered order.
    pub cost_per_order: f64,
    /// Delivered orders per bundle.
    pub orders_per_bundle: f64,
}

impl Metrics {
    /// Delivered share in percent.
    pub fn delivered_pct(&self) -> f64 {
        if self.orders == 0 {
            100.0
        } else {
            100.0 * self.delivered as f64 / self.orders as f64
        }
    }
}

/// The 90th percentile (nearest rank) of `values`.
pub fn p90(values: &mut [f64]) -> f64 {
    percentile(values, 0.9)
}

/// The `q` quantile (nearest rank) of `values`; 0 when empty.
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// The figures of a solution.
pub fn metrics(inst: &Instance, sol: &Solution) -> Metrics {
    let p = &inst.params;
    let mut ctd: Vec<f64> = Vec::new();
    let mut r2p: Vec<f64> = Vec::new();
    let mut per_courier = vec![0usize; inst.couriers.len()];
    for r in &sol.orders {
        let o = &inst.orders[r.order];
        ctd.push(r.dropoff - o.placed);
        r2p.push(r.pickup - o.ready);
        per_courier[r.courier] += 1;
    }
    let overage = mean(
        &ctd.iter()
            .map(|c| (c - p.target).max(0.0))
            .collect::<Vec<_>>(),
    );
    let shift_hours: Vec<f64> = inst
        .couriers
        .iter()
        .map(|c| (c.off - c.on).max(0.0) / 60.0)
        .collect();
    let total_hours: f64 = shift_hours.iter().sum();
    let pay: f64 = per_courier
        .iter()
        .zip(&shift_hours)
        .map(|(n, h)| (p.pay_per_order * *n as f64).max(p.pay_per_hour * h))
        .sum();
    let position = |courier: usize, s: Stop| match s {
        Stop::Start => inst.couriers[courier].start,
        Stop::Restaurant(r) => inst.restaurants[r].1,
        Stop::Order(o) => inst.orders[o].dropoff,
    };
    let driving: f64 = sol
        .moves
        .iter()
        .map(|m| {
            inst.travel(
                position(m.courier, m.origin),
                position(m.courier, m.destination),
            )
        })
        .sum();
    let service =
        sol.bundles.len() as f64 * p.pickup_service + sol.orders.len() as f64 * p.dropoff_service;
    let delivered = sol.orders.len();
    Metrics {
        orders: inst.orders.len(),
        delivered,
        deliverable: (0..inst.orders.len())
            .filter(|&i| inst.deliverable(i))
            .count(),
        past_max: ctd.iter().filter(|&&c| c > p.max + 1e-9).count(),
        ctd_mean: mean(&ctd),
        ctd_p90: p90(&mut ctd),
        ctd_bound_mean: mean(
            &sol.orders
                .iter()
                .map(|r| inst.ctd_bound(r.order))
                .collect::<Vec<_>>(),
        ),
        overage_mean: overage,
        r2p_mean: mean(&r2p),
        r2p_p90: p90(&mut r2p),
        utilisation: if total_hours > 0.0 {
            (driving + service) / (total_hours * 60.0)
        } else {
            0.0
        },
        orders_per_courier_hour: if total_hours > 0.0 {
            delivered as f64 / total_hours
        } else {
            0.0
        },
        cost_per_order: if delivered > 0 {
            pay / delivered as f64
        } else {
            0.0
        },
        orders_per_bundle: if sol.bundles.is_empty() {
            0.0
        } else {
            delivered as f64 / sol.bundles.len() as f64
        },
    }
}
