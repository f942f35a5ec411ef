//! Many campuses in one process: N campuses (default 50), each with C
//! online couriers (default 200) and W paid orders waiting (default 1000),
//! built from `config/campus.toml` copied under other ids and origins. It
//! times each campus's planning round on the pure dispatch core (what a
//! campus's dispatcher runs every `dispatch.tick`, on its own thread),
//! reports the memory each loaded campus costs, and writes the campus
//! directory (`target/bench-campuses/`) that `benches/load.sh` can serve
//! to measure the order path with that many campuses running:
//!
//!   cargo bench --bench campuses [-- CAMPUSES COURIERS WAITING]
//!   LASTMILE__CAMPUS__MAP=target/bench-campuses benches/load.sh 10s

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lastmile_actors::campus::{Campus, Campuses};
use lastmile_actors::dispatch::core::DispatchCore;
use lastmile_actors::dispatch::DispatchConfig;
use lastmile_actors::domain::{now_utc, OpenId, OrderId, PlaceId};
use lastmile_actors::orders::OrderWaiting;
use rand::{Rng, SeedableRng};

/// The service's `[dispatch]` defaults (config/default.toml).
fn dispatch_config() -> DispatchConfig {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    DispatchConfig {
        tick: Duration::from_millis(200),
        max_tasks: 3,
        reassign_after: minutes(10),
        auto: true,
        presence_ttl: minutes(5),
        speed: 200.0,
        pickup_service: minutes(2),
        dropoff_service: minutes(2),
        target: minutes(40),
        max: minutes(90),
        review: false,
        releases_per_day: 3,
    }
}

/// Resident memory of this process in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Writes `count` copies of the main campus map, 11 km apart, as a campus
/// directory (the first keeps its place ids, so the load test's orders
/// still name real places); answers its path.
fn write_campuses(count: usize) -> PathBuf {
    let base = std::fs::read_to_string("config/campus.toml").expect("config/campus.toml");
    let dir = PathBuf::from("target/bench-campuses");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("campus directory");
    std::fs::write(dir.join("c00.toml"), &base).expect("campus file");
    for i in 1..count {
        let id = format!("c{i:02}");
        let text = base
            .replace("id = \"main\"", &format!("id = \"{id}\""))
            .replace(
                "latitude = 40.0000",
                &format!("latitude = {:.4}", 30.0 + 0.1 * i as f64),
            )
            .replace("id = \"", &format!("id = \"{id}-"))
            .replace(&format!("id = \"{id}-{id}\""), &format!("id = \"{id}\""));
        std::fs::write(dir.join(format!("{id}.toml")), text).expect("campus file");
    }
    dir
}

/// A campus's core with `couriers` online and `waiting` paid orders.
fn loaded(campus: &Campus, couriers: usize, waiting: usize, seed: u64) -> DispatchCore {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let now = now_utc();
    let at = Instant::now();
    let mut core = DispatchCore::new(campus, dispatch_config().on(campus), now, at);
    let places = campus.places();
    for c in 0..couriers {
        let who = OpenId::parse(&format!("o{}c{c}", campus.id())).expect("openid");
        core.set_online(who, rng.gen_range(0..places.len()), at);
    }
    let place = |i: usize| PlaceId::parse(&places[i].id, campus, "place").expect("place");
    for w in 0..waiting {
        let customer = OpenId::parse(&format!("o{}u{w}", campus.id())).expect("openid");
        let since = now - Duration::from_secs(rng.gen_range(0..600));
        core.add_waiting(OrderWaiting {
            id: OrderId::generate(&customer, since),
            pickup: place(rng.gen_range(0..places.len())),
            dropoff: place(rng.gen_range(0..places.len())),
            customer,
            since,
            ready_at: since + Duration::from_secs(rng.gen_range(0..900)),
            declined: Vec::new(),
            campus: None,
        });
    }
    core
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let count = args.first().copied().unwrap_or(50);
    let couriers = args.get(1).copied().unwrap_or(200);
    let waiting = args.get(2).copied().unwrap_or(1000);
    let dir = write_campuses(count);
    let campuses = Campuses::load(Path::new(&dir)).expect("the campus directory loads");
    let tick = dispatch_config().tick;

    let before = rss_mib();
    let mut cores: Vec<DispatchCore> = campuses
        .iter()
        .enumerate()
        .map(|(i, c)| loaded(c, couriers, waiting, i as u64))
        .collect();
    let per_campus = (rss_mib() - before) / count as f64;

    // Five seconds of ticks on every campus, one after another (the CPU a
    // second of dispatch costs, all campuses together): each tick the
    // shards accept what the last one sent, and every campus plans what
    // changed (or, quiet, at least every second).
    let ticks = (Duration::from_secs(5).as_millis() / tick.as_millis()) as u32;
    let mut rounds: Vec<Duration> = Vec::new();
    let mut spent = Duration::ZERO;
    let mut sent = 0;
    let mut in_flight: Vec<Vec<lastmile_actors::dispatch::core::Send>> = vec![Vec::new(); count];
    let (start, at) = (now_utc(), Instant::now());
    for t in 0..ticks {
        let (now, at) = (start + tick * t, at + tick * t);
        for (core, flying) in cores.iter_mut().zip(in_flight.iter_mut()) {
            let started = Instant::now();
            for s in flying.drain(..) {
                core.settle(&s.order, &s.courier, None, now);
            }
            let round = core.round(now, at);
            let took = started.elapsed();
            spent += took;
            if round.planned {
                rounds.push(took);
            }
            sent += round.sends.len();
            *flying = round.sends;
        }
    }
    rounds.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let budget = 2.0 * tick.as_secs_f64() * f64::from(ticks);
    println!(
        "{count} campuses × {couriers} couriers × {waiting} waiting orders, {ticks} ticks of {} ms",
        tick.as_millis()
    );
    println!("| rounds planned | round p50 | round p90 | round max | CPU, all campuses | share of 2 cores |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} of {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} ms per second | {:.0} % |",
        rounds.len(),
        count * ticks as usize,
        ms(percentile(&rounds, 0.5)),
        ms(percentile(&rounds, 0.9)),
        ms(percentile(&rounds, 1.0)),
        ms(spent) / 5.0,
        100.0 * spent.as_secs_f64() / budget
    );
    println!("assignments sent: {sent} of {}", count * waiting);
    println!("memory: {per_campus:.2} MiB per loaded campus (RSS)");
    println!("campus directory for benches/load.sh: {}", dir.display());
}
