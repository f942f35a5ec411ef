//! PostgreSQL going away while the service runs: what needs it answers 503
//! `unavailable` (never a 500), nothing acknowledged is lost, and the pool
//! comes back by itself once the server does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{eventually, order_body, BinaryApp};
use crate::postgres::OwnServer;

/// One create's answer: status, error code, the order's id.
type Answer = (u16, String, Option<String>);

async fn create(client: &reqwest::Client, base: &str, token: &str) -> Answer {
    let res = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .json(&order_body())
        .send()
        .await;
    let Ok(res) = res else {
        return (0, "no answer".into(), None);
    };
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    let id = body["id"].as_str().map(str::to_owned);
    (status, code, id)
}

#[actix_web::test]
async fn a_database_stopped_and_started_under_load_loses_nothing_acknowledged() {
    let server = OwnServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let url = server.url();
    let app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__STORAGE__ENGINE", "postgres"),
            ("LASTMILE__STORAGE__POSTGRES__URL", url.as_str()),
            ("LASTMILE__STORAGE__POSTGRES__POOL", "8"),
            // Load, not a customer: no cap on orders awaiting payment.
            ("LASTMILE__ORDERS__MAX_UNPAID", "1000000"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let base = app.url("");
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for n in 0..4 {
        let (token, _) = app.login(&client, &format!("outage-{n}")).await;
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        load.push(actix_web::rt::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                answers.push(create(&client, &base, &token).await);
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        }));
    }
    actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    server.stop();
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let during = client
        .get(app.url("/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16());
    server.restart();
    let (token, _) = app.login(&client, "outage-after").await;
    let back = eventually(Duration::from_secs(30), || async {
        create(&client, &base, &token).await.0 == 201
    })
    .await;
    let ready = eventually(Duration::from_secs(10), || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut answers: Vec<Answer> = Vec::new();
    for worker in load {
        answers.extend(worker.await.expect("load"));
    }

    assert_eq!(during.ok(), Some(503), "/readyz while the database is down");
    assert!(back, "creates work again once the database is back");
    assert!(ready, "ready again once the database is back");
    let odd: Vec<&Answer> = answers
        .iter()
        .filter(|(status, code, _)| !(*status == 201 || (*status == 503 && code == "unavailable")))
        .collect();
    assert!(odd.is_empty(), "only 201 or 503 unavailable: {odd:?}");
    let refused = answers.iter().filter(|a| a.0 == 503).count();
    assert!(refused > 0, "the outage was seen");
    let acknowledged: Vec<String> = answers
        .iter()
        .filter(|a| a.0 == 201)
        .filter_map(|a| a.2.clone())
        .collect();
    let listed = acknowledged
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let kept = server.psql(&format!(
        "SELECT count(*) FROM orders WHERE id IN ({listed})"
    ));
    assert_eq!(
        kept,
        acknowledged.len().to_string(),
        "every acknowledged order is in the database"
    );
}
