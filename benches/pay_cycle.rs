//! Load driver for the paid-order path: each of N workers loops create →
//! prepay (`POST /orders/{id}/pay`) → the sandbox pays
//! (`POST /sandbox/pay/{id}`, which sends the signed notify back to the
//! service over HTTP and answers once it is acknowledged, so the payment,
//! and with it the ledger's inbox write, is durable). wrk cannot chain a
//! response into the next request per connection, hence this driver.
//!
//! `pay_cycle BASE TOKENS_FILE SECONDS WORKERS` prints
//! `RESULT cycles_per_s=… p50_ms=… p99_ms=… cycles=… failures=…`
//! (latency of a whole cycle). Run by `benches/pay_cycle.sh`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One paid order: its three calls; Err names the step that failed.
async fn cycle(client: &reqwest::Client, base: &str, token: &str, i: u64) -> Result<(), String> {
    let body = json!({
        "kind": if i.is_multiple_of(3) { "takeout" } else { "express" },
        "pickup": {"place_id": "cainiao-north", "detail": format!("shelf {}", i % 40)},
        "dropoff": {"place_id": "dorm-3", "detail": format!("room {}", 100 + i % 600)},
        "pickup_code": format!("{}-{}-{:04}", i % 9, i % 7, i % 10_000),
        "fee_fen": 200 + (i % 9) * 50,
        "note": "请放门口，谢谢"
    });
    let created: Value = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("create: {e}"))?
        .json()
        .await
        .map_err(|e| format!("create: {e}"))?;
    let id = created["id"].as_str().ok_or("create: no id")?;
    for (step, url) in [
        ("prepay", format!("{base}/api/v1/orders/{id}/pay")),
        ("sandbox pay", format!("{base}/sandbox/pay/{id}")),
    ] {
        let res = client
            .post(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("{step}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("{step}: HTTP {}", res.status()));
        }
        res.bytes().await.map_err(|e| format!("{step}: {e}"))?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, tokens, seconds, workers] = &args[..] else {
        eprintln!("usage: pay_cycle BASE TOKENS_FILE SECONDS WORKERS");
        std::process::exit(2);
    };
    let tokens: Vec<String> = std::fs::read_to_string(tokens)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let (Ok(seconds), Ok(workers)) = (seconds.parse::<u64>(), workers.parse::<u64>()) else {
        eprintln!("SECONDS and WORKERS are numbers");
        std::process::exit(2);
    };
    if tokens.is_empty() {
        eprintln!("no tokens");
        std::process::exit(2);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(workers as usize)
        .build()
        .unwrap_or_default();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, base) = (client.clone(), base.clone());
        let token = tokens[w as usize % tokens.len()].clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut failures, mut i) = (Vec::new(), 0u64, w * 1_000_000);
            while Instant::now() < until {
                let at = Instant::now();
                match cycle(&client, &base, &token, i).await {
                    Ok(()) => latencies.push(at.elapsed()),
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            eprintln!("worker {w}: {e}");
                        }
                    }
                }
                i += 1;
            }
            (latencies, failures)
        }));
    }
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((l, f)) = task.await {
            latencies.extend(l);
            failures += f;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "RESULT cycles_per_s={:.0} p50_ms={:.2} p99_ms={:.2} cycles={} failures={failures}",
        latencies.len() as f64 / elapsed,
        at(0.5),
        at(0.99),
        latencies.len()
    );
}
