//! A matching round on the real campus map with random positions:
//! 100×50, 1 000×300 and 5 000×1 000 (orders × couriers, 3 slots each).
//! Prints the round's total pickup distance against the exact optimum and
//! against a greedy nearest-courier baseline, then times the round.

use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lastmile_actors::campus::Campus;
use lastmile_actors::matching::{
    assign, assign_greedy, total_metres, Distances, FreeCourier, WaitingOrder,
};
use rand::{Rng, SeedableRng};

type Instance = (Vec<WaitingOrder<usize, u32>>, Vec<FreeCourier<u32>>);

fn instance(places: usize, orders: usize, couriers: usize, seed: u64) -> Instance {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let orders = (0..orders)
        .map(|i| WaitingOrder {
            id: i,
            place: rng.gen_range(0..places),
            urgent: rng.gen_bool(0.05),
            waited_ms: rng.gen_range(0..600_000),
            customer: 1_000_000 + i as u32,
        })
        .collect();
    let couriers = (0..couriers)
        .map(|i| FreeCourier {
            id: i as u32,
            place: rng.gen_range(0..places),
            free: 3,
        })
        .collect();
    (orders, couriers)
}

fn bench_rounds(c: &mut Criterion) {
    let campus = Campus::load(Path::new("config/campus.toml")).expect("campus map");
    let ids: Vec<String> = campus.places().iter().map(|p| p.id.clone()).collect();
    let dist = Distances::new(ids.len(), |a, b| {
        campus.distance(&ids[a], &ids[b]).unwrap_or(0.0)
    });
    let mut group = c.benchmark_group("dispatch_round");
    println!(
        "{:>12} {:>9} {:>11} {:>13} {:>13} {:>13}",
        "orders×cour", "assigned", "round (ms)", "ours (m)", "exact (m)", "greedy (m)"
    );
    for (orders, couriers) in [(100, 50), (1_000, 300), (5_000, 1_000)] {
        let (o, k) = instance(ids.len(), orders, couriers, 42);
        let started = Instant::now();
        let pairs = assign(&o, &k, &dist);
        let ms = started.elapsed().as_secs_f64() * 1e3;
        // The min-cost flow is exact for the distance objective; urgent
        // orders are matched first by design, so compare on a copy with
        // urgency off for the pure distance optimum.
        let plain: Vec<_> = o
            .iter()
            .cloned()
            .map(|mut w| {
                w.urgent = false;
                w
            })
            .collect();
        let exact = total_metres(&assign(&plain, &k, &dist), &plain, &k, &dist);
        let ours = total_metres(&pairs, &o, &k, &dist);
        let greedy_pairs = assign_greedy(&plain, &k, &dist);
        let greedy = total_metres(&greedy_pairs, &plain, &k, &dist);
        println!(
            "{:>12} {:>9} {:>11.3} {:>13.0} {:>13.0} {:>13.0}",
            format!("{orders}×{couriers}"),
            pairs.len(),
            ms,
            ours,
            exact,
            greedy
        );
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{orders}x{couriers}")),
            &(o, k),
            |b, (o, k)| b.iter(|| assign(o, k, &dist)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_rounds);
criterion_main!(benches);
