//! The ledger's check over a big book: `LEDGER_BENCH_ORDERS` orders
//! (default 500 000) paid and completed — two postings each, 1 M postings
//! by default — written through the ledger's repository, then the ledger
//! started as the service starts it (catch-up and the check) and checked
//! again through its handle (each check replays the whole journal).
//! Prints the posting rate, the start and check times, the process's
//! memory and the size on disk.
//!
//! `cargo bench --bench ledger_check` (or with `LEDGER_BENCH_ORDERS=…`).

use std::time::{Duration, Instant};

use lastmile_actors::domain::{now_utc, unix_ms, OpenId, OrderId};
use lastmile_actors::domain::{Commission, MoneyEvent};
use lastmile_actors::ledger::{Batch, Ledger, LedgerConfig, Payout, WithdrawalRules};
use lastmile_actors::storage::Engine;

/// A line of `/proc/self/status` in MiB (`VmRSS`, `VmHWM`).
fn memory_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn disk_mib(path: &std::path::Path) -> f64 {
    fn walk(path: &std::path::Path) -> u64 {
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(path) as f64 / (1024.0 * 1024.0)
}

/// Writes `orders` paid and completed orders; answers the postings made.
fn fill(store: &Engine, orders: u64) -> u64 {
    let repo = store.ledger_repo();
    let customer = OpenId::parse("oBENCHCUSTOMER").expect("openid");
    let couriers: Vec<OpenId> = (0..200)
        .map(|i| OpenId::parse(&format!("oBENCHCOURIER{i:03}")).expect("openid"))
        .collect();
    let now = now_utc();
    let at = unix_ms(now);
    let commission = Commission {
        default: 10,
        campuses: Default::default(),
    };
    let ids = repo.ids();
    let mut posted = 0;
    for i in 0..orders {
        let order = OrderId::generate(&customer, now);
        let total = 300 + (i % 7) as u32 * 50;
        let tip = if i % 5 == 0 { 100 } else { 0 };
        let courier = couriers[(i % 200) as usize].clone();
        for event in [
            MoneyEvent::Paid {
                order: order.clone(),
                total,
                campus: None,
            },
            MoneyEvent::Completed {
                order,
                courier,
                total,
                tip,
                campus: None,
            },
        ] {
            let mut batch = Batch::new(repo.as_ref(), &ids);
            if batch
                .post_told(u64::MAX, &event, &commission, at)
                .expect("post")
            {
                posted += 1;
            }
            repo.write_postings(&batch.finish()).expect("write");
        }
    }
    store.flush_blocking().expect("flush");
    posted
}

fn main() {
    let orders: u64 = std::env::var("LEDGER_BENCH_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let store = Engine::sled(&data, Duration::from_millis(1)).expect("store");

    let started = Instant::now();
    let postings = fill(&store, orders);
    let filling = started.elapsed();
    println!(
        "postings written: {postings} in {:.1} s ({:.0} postings/s, one sled transaction each)",
        filling.as_secs_f64(),
        postings as f64 / filling.as_secs_f64()
    );
    println!(
        "on disk: {:.0} MiB; memory now: RSS {:.0} MiB",
        disk_mib(&data),
        memory_mib("VmRSS:")
    );

    let system = actix_rt::System::new();
    system.block_on(async {
        let rules = WithdrawalRules {
            min_fen: 100,
            daily_fen: 50_000,
            review: true,
            payout: Payout::Manual,
        };
        let config = LedgerConfig {
            commission: Commission {
                default: 10,
                campuses: Default::default(),
            },
        };
        let started = Instant::now();
        let ledger = Ledger::start(store.ledger_repo(), config, rules, None, None).expect("start");
        let start = started.elapsed();
        // The first answer waits for the start-up proof (a journal replay).
        let started = Instant::now();
        ledger.check().await.expect("check");
        let first = started.elapsed();
        let started = Instant::now();
        let check = ledger.check().await.expect("check");
        let checked = started.elapsed();
        assert!(check.balanced, "{:?}", check.problems);
        assert_eq!(check.postings, postings);
        let holding: u64 = check.accounts.iter().map(|c| c.count).sum();
        println!(
            "ledger start (invariants over the balances): {:.0} ms; first check (after the start-up replay): {:.0} ms; \
             a check (replays {} postings): {:.0} ms; {holding} accounts hold money",
            start.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            check.postings,
            checked.as_secs_f64() * 1e3
        );
        println!(
            "memory after the checks: RSS {:.0} MiB, peak {:.0} MiB",
            memory_mib("VmRSS:"),
            memory_mib("VmHWM:")
        );
    });
}
