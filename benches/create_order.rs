//! Criterion bench of the create-order path in process: the whole actix-web
//! app (auth, JSON, validation, shard actor, sled write, group commit)
//! through `actix_web::test`, one at a time (latency) and 64 in flight
//! (throughput, as the wrk load test drives it).

use std::time::{Duration, Instant};

use actix_web::test;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::future::join_all;
use lastmile::config::Settings;
use lastmile::startup::{app, start_services, wechat_client};
use serde_json::json;

fn order_body(i: u64) -> serde_json::Value {
    json!({
        "kind": if i.is_multiple_of(3) { "takeout" } else { "express" },
        "pickup": {"place_id": "cainiao-north", "detail": format!("shelf {}-{}", i % 9, i % 40)},
        "dropoff": {"place_id": "dorm-3", "detail": format!("room {}", 100 + i % 600)},
        "pickup_code": format!("{}-{}-{:04}", i % 9, i % 7, i % 10_000),
        "fee_fen": 200 + (i % 9) * 50,
        "note": "请放门口，谢谢"
    })
}

fn bench_create(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::load(None).expect("config/default.toml");
    settings.storage.path = dir.path().join("data");
    // Every iteration makes an unpaid order: measure creation, not the bound.
    settings.orders.max_unpaid = u32::MAX;
    let system = actix_rt::System::new();
    let (svc, tokens) = system.block_on(async {
        let wechat = wechat_client(&settings).expect("sandbox");
        let services = start_services(&settings, wechat, "http://127.0.0.1:9").expect("services");
        let svc = test::init_service(app(services.state.clone())).await;
        let mut tokens = Vec::new();
        for u in 0..64 {
            let req = test::TestRequest::post()
                .uri("/api/v1/auth/login")
                .set_json(json!({"code": format!("bench-{u}")}))
                .to_request();
            let body: serde_json::Value = test::call_and_read_body_json(&svc, req).await;
            tokens.push(body["token"].as_str().expect("token").to_owned());
        }
        (svc, tokens)
    });
    let request = |i: u64| {
        test::TestRequest::post()
            .uri("/api/v1/orders")
            .insert_header((
                "Authorization",
                format!("Bearer {}", tokens[i as usize % tokens.len()]),
            ))
            .set_json(order_body(i))
            .to_request()
    };

    let mut group = c.benchmark_group("create_order");
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_at_a_time", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let res = test::call_service(&svc, request(i)).await;
                    assert_eq!(res.status(), 201);
                }
                start.elapsed()
            })
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("64_in_flight", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for round in 0..iters {
                    let calls = (0..64).map(|k| test::call_service(&svc, request(round * 64 + k)));
                    for res in join_all(calls).await {
                        assert_eq!(res.status(), 201);
                    }
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_create);
criterion_main!(benches);
