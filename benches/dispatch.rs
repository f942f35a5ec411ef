//! One live planning round on the real campus map with random orders and
//! couriers: 100×50, 1 000×300 and 5 000×1 000 (orders × couriers; 70 %
//! of couriers idle, the rest free within 20 minutes). Prints what the
//! round sends and the planned click-to-door of those orders against a
//! greedy nearest-idle-courier round, then times the round.

use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lastmile_actors::campus::Campus;
use lastmile_actors::dispatch::planner::{self, Courier, Errand, Params, Point};
use rand::{Rng, SeedableRng};

/// The campus defaults of `[dispatch]` (config/default.toml).
fn params() -> Params {
    Params {
        speed: 200.0,
        whole_minutes: false,
        pickup_service: 2.0,
        dropoff_service: 2.0,
        target: 40.0,
        max: 90.0,
        max_is_hard: false,
        max_bundle: 3,
    }
}

fn instance(
    places: &[Point],
    orders: usize,
    couriers: usize,
    seed: u64,
) -> (Vec<Errand>, Vec<Courier>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let place = |rng: &mut rand::rngs::StdRng| {
        let i = rng.gen_range(0..places.len());
        (i as u32, places[i])
    };
    let orders = (0..orders)
        .map(|key| {
            let (site, pickup) = place(&mut rng);
            let (_, dropoff) = place(&mut rng);
            let placed = -rng.gen_range(0.0..20.0);
            Errand {
                key,
                site,
                pickup,
                dropoff,
                placed,
                ready: placed + rng.gen_range(0.0..15.0),
                owner: Some(1_000_000 + key as u64),
                barred: Vec::new(),
            }
        })
        .collect();
    let couriers = (0..couriers)
        .map(|key| Courier {
            key,
            pos: place(&mut rng).1,
            free_at: if rng.gen_bool(0.7) {
                0.0
            } else {
                rng.gen_range(1.0..20.0)
            },
            off_time: f64::INFINITY,
            capacity: 3,
            owner: Some(key as u64),
        })
        .collect();
    (orders, couriers)
}

/// Each order, oldest first, to the nearest idle courier left, alone.
fn greedy(p: &Params, orders: &[Errand], couriers: &[Courier]) -> Vec<f64> {
    let mut by_age: Vec<&Errand> = orders.iter().collect();
    by_age.sort_by(|a, b| a.placed.total_cmp(&b.placed));
    let mut used = vec![false; couriers.len()];
    let mut ctd = Vec::new();
    for o in by_age {
        let nearest = couriers
            .iter()
            .filter(|c| c.free_at <= 0.0 && !used[c.key])
            .min_by(|a, b| {
                a.pos
                    .distance(o.pickup)
                    .total_cmp(&b.pos.distance(o.pickup))
            });
        if let Some(c) = nearest {
            used[c.key] = true;
            let a = planner::schedule(p, 0.0, c.pos, 0.0, o.pickup, &[o]);
            ctd.push(a.dropoffs[0] - o.placed);
        }
    }
    ctd
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

fn bench_rounds(c: &mut Criterion) {
    let campus = Campus::load(Path::new("config/campus.toml")).expect("campus map");
    let places: Vec<Point> = campus
        .places()
        .iter()
        .map(|p| Point { x: p.x, y: p.y })
        .collect();
    let p = params();
    let mut group = c.benchmark_group("dispatch_round");
    println!(
        "{:>12} {:>8} {:>7} {:>11} {:>12} {:>10} {:>12}",
        "orders×cour", "bundles", "orders", "round (ms)", "planned CTD", "greedy n", "greedy CTD"
    );
    for (orders, couriers) in [(100, 50), (1_000, 300), (5_000, 1_000)] {
        let (o, k) = instance(&places, orders, couriers, 42);
        let started = Instant::now();
        let plan = planner::plan_with(&p, 0.0, &o, &k, &mut []);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let ctd: Vec<f64> = plan
            .assignments
            .iter()
            .flat_map(|a| {
                a.orders
                    .iter()
                    .zip(&a.dropoffs)
                    .map(|(&k, d)| d - o[k].placed)
            })
            .collect();
        let naive = greedy(&p, &o, &k);
        println!(
            "{:>12} {:>8} {:>7} {:>11.2} {:>12.1} {:>10} {:>12.1}",
            format!("{orders}×{couriers}"),
            plan.assignments.len(),
            ctd.len(),
            ms,
            mean(&ctd),
            naive.len(),
            mean(&naive)
        );
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{orders}x{couriers}")),
            &(o, k),
            |b, (o, k)| b.iter(|| planner::plan_with(&p, 0.0, o, k, &mut [])),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_rounds);
criterion_main!(benches);
