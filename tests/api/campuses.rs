//! Campuses: `GET /api/v1/campuses`, orders and couriers on their campus,
//! one dispatcher per campus, and the admin API scoped to a campus.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::domain::CampusId;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{eventually, get_json, order_body, spawn_app, spawn_app_with, BinaryApp};

/// The shipped directory of two campuses: `main` (the single-campus map)
/// and the smaller `east`.
fn two_campuses() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/campuses"))
}

/// An order body between two places (on whatever campus they are).
fn errand(pickup: &str, dropoff: &str) -> Value {
    let mut body = order_body();
    body["pickup"]["place_id"] = json!(pickup);
    body["dropoff"]["place_id"] = json!(dropoff);
    body
}

/// `body` naming `campus`.
fn on(campus: &str, mut body: Value) -> Value {
    body["campus"] = json!(campus);
    body
}

#[actix_web::test]
async fn the_campuses_and_their_places_are_public_and_are_what_orders_name() {
    let app = spawn_app().await;
    let reply = app.send(TestRequest::get().uri("/api/v1/campuses")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let campuses = reply.body.as_array().expect("a list").clone();
    assert_eq!(campuses.len(), 1, "{}", reply.body);
    let campus = &campuses[0];
    assert_eq!(campus["id"], "main");
    assert_eq!(campus["name"], "Example University main campus");
    assert_eq!(
        campus["origin"],
        json!({"latitude": 40.0, "longitude": 116.3})
    );
    let places = campus["places"].as_array().expect("places");
    assert_eq!(places.len(), 35);
    for place in places {
        for key in ["id", "name", "kind", "x", "y"] {
            assert!(!place[key].is_null(), "{key} missing in {place}");
        }
    }
    // Any two of them make an order, on that campus.
    let (token, _) = app.login("campus-reader").await;
    let body = errand(
        places[0]["id"].as_str().expect("id"),
        places[34]["id"].as_str().expect("id"),
    );
    let created = app.create_order(&token, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["campus"], "main");
}

#[actix_web::test]
async fn orders_carry_their_campus_its_prices_and_never_span_two() {
    let app = spawn_app_with(|s| s.campus.map = two_campuses()).await;
    let listed = app.send(TestRequest::get().uri("/api/v1/campuses")).await;
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["main", "east"], "map order: the default campus first");
    let (token, _) = app.login("two-campus-customer").await;

    let east = app
        .create_order(&token, &errand("east-station", "east-dorm-1"))
        .await;
    assert_eq!(east.status, StatusCode::CREATED, "{}", east.body);
    assert_eq!(east.body["campus"], "east");
    let main = app.create_order(&token, &order_body()).await;
    assert_eq!(main.body["campus"], "main", "{}", main.body);
    let named = app
        .create_order(&token, &on("east", errand("east-campus-gate", "east-lab")))
        .await;
    assert_eq!(named.status, StatusCode::CREATED, "{}", named.body);

    // East's floor is 100 fen; main's is 1.
    let cheap = app
        .create_order(&token, &{
            let mut b = errand("east-station", "east-dorm-1");
            b["fee_fen"] = json!(99);
            b
        })
        .await;
    assert_eq!(cheap.status, StatusCode::BAD_REQUEST, "{}", cheap.body);
    assert!(cheap.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("at least 100")));
    let quote = app
        .send(
            TestRequest::get()
                .uri("/api/v1/price?kind=express&pickup=east-station&dropoff=east-dorm-1"),
        )
        .await;
    assert_eq!(quote.body["min_fen"], 100, "{}", quote.body);
    assert_eq!(quote.body["fee_fen"], 150, "east's express base");

    let before = app.count_orders(&token).await;
    for (body, says) in [
        (errand("dorm-1", "east-dorm-1"), "one campus"),
        (
            on("main", errand("east-station", "east-dorm-1")),
            "not on campus main",
        ),
        (on("west", order_body()), "not a campus"),
        (on("Main!", order_body()), "not a campus"),
    ] {
        let refused = app.create_order(&token, &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.code(), "validation");
        let message = refused.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(says), "{says}: {message}");
    }
    assert_eq!(app.count_orders(&token).await, before, "nothing was stored");
}

#[actix_web::test]
async fn a_place_id_on_two_campuses_needs_the_campus_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let campus = |id: &str, lng: f64| {
        format!(
            "id = '{id}'\norigin = {{ latitude = 40.0, longitude = {lng} }}\n\
             [[places]]\nid='gate'\nname='Gate'\nkind='gate'\nx=0\ny=0\n\
             [[places]]\nid='{id}-dorm'\nname='Dorm'\nkind='dorm'\nx=300\ny=400\n"
        )
    };
    std::fs::write(dir.path().join("a.toml"), campus("north", 116.3)).expect("write");
    std::fs::write(dir.path().join("b.toml"), campus("south", 116.5)).expect("write");
    let map = dir.path().to_owned();
    let app = spawn_app_with(|s| s.campus.map = map).await;
    let (token, _) = app.login("shared-gate").await;

    let unnamed = app
        .create_order(&token, &errand("gate", "south-dorm"))
        .await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST, "{}", unnamed.body);
    assert!(unnamed.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("campus is required")));
    let named = app
        .create_order(&token, &on("south", errand("gate", "south-dorm")))
        .await;
    assert_eq!(named.status, StatusCode::CREATED, "{}", named.body);
    assert_eq!(named.body["campus"], "south");
    // A pickup on one campus decides it: the shared gate as the drop-off
    // is that campus's gate.
    let dorm_first = app
        .create_order(&token, &errand("north-dorm", "gate"))
        .await;
    assert_eq!(
        dorm_first.status,
        StatusCode::CREATED,
        "{}",
        dorm_first.body
    );
    assert_eq!(dorm_first.body["campus"], "north");
}

#[actix_web::test]
async fn couriers_work_on_one_campus_and_get_only_its_orders() {
    let app = spawn_app_with(|s| {
        s.campus.map = two_campuses();
        s.dispatch.tick = Duration::from_millis(20);
    })
    .await;
    let (main_courier, main_id) = app.online_courier("main-runner", "cainiao-north").await;
    let (east_courier, east_id) = app.online_courier("east-walker", "east-station").await;
    let me = app
        .post_as(
            &east_courier,
            "/api/v1/couriers/me/location",
            Some(json!({"place_id": "east-station"})),
        )
        .await;
    assert_eq!(me.body["campus"], "east", "{}", me.body);

    let (customer, openid) = app.login("east-student").await;
    let created = app
        .create_order(&customer, &errand("east-station", "east-dorm-2"))
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.pay(&customer, &openid, &id).await;
    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(5))
            .await
    );
    let order = app.get_order(&customer, &id).await.body;
    assert_eq!(
        order["courier"],
        json!(east_id),
        "the east courier, not {main_id}"
    );

    // The main courier cannot take an east order, even by grabbing.
    let (customer2, openid2) = app.login("east-student-2").await;
    let other = app
        .create_order(&customer2, &errand("east-campus-gate", "east-lab"))
        .await;
    let other_id = other.body["id"].as_str().expect("id").to_owned();
    let grab = app
        .post_as(
            &main_courier,
            &format!("/api/v1/orders/{other_id}/grab"),
            None,
        )
        .await;
    assert_eq!(grab.status, StatusCode::CONFLICT, "{}", grab.body);
    app.pay(&customer2, &openid2, &other_id).await;
    let open = app
        .get_as(&main_courier, "/api/v1/orders/open?near=cainiao-north")
        .await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    assert!(
        open.body["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .all(|o| o["id"] != json!(other_id)),
        "an east order is not open to a main courier: {}",
        open.body
    );

    // Holding an east task, the east courier cannot move to main.
    let moved = app
        .post_as(
            &east_courier,
            "/api/v1/couriers/me/online",
            Some(json!({"place_id": "dorm-1"})),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CONFLICT, "{}", moved.body);
    // A phone near the east origin is on east; near main's, on main.
    let located = app
        .post_as(
            &east_courier,
            "/api/v1/couriers/me/location",
            Some(json!({"latitude": 40.003, "longitude": 116.402})),
        )
        .await;
    assert_eq!(located.status, StatusCode::OK, "{}", located.body);
    assert_eq!(located.body["campus"], "east");
    let (free, _) = app.online_courier("free-runner", "dorm-2").await;
    let to_east = app
        .post_as(
            &free,
            "/api/v1/couriers/me/online",
            Some(json!({"latitude": 40.002, "longitude": 116.4015})),
        )
        .await;
    assert_eq!(to_east.status, StatusCode::OK, "{}", to_east.body);
    assert_eq!(
        to_east.body["campus"], "east",
        "a courier without tasks moves"
    );
    let nowhere = app
        .post_as(
            &free,
            "/api/v1/couriers/me/online",
            Some(json!({"latitude": 40.06, "longitude": 116.35})),
        )
        .await;
    assert_eq!(nowhere.status, StatusCode::BAD_REQUEST, "{}", nowhere.body);
}

#[actix_web::test]
async fn a_panic_in_one_campus_dispatcher_leaves_the_other_assigning() {
    let app = spawn_app_with(|s| {
        s.campus.map = two_campuses();
        s.dispatch.tick = Duration::from_millis(20);
    })
    .await;
    let series = r#"lastmile_actor_restarts_total{actor="dispatcher"}"#;
    let before = app.metric(series).await;
    let (_, east_id) = app.online_courier("east-steady", "east-campus-gate").await;
    let (_, main_id) = app.online_courier("main-steady", "canteen-1").await;

    app.state
        .dispatch
        .inject_panic_on(&CampusId::parse("main").expect("id"));
    // East assigns while main is down or restarting.
    let (customer, openid) = app.login("east-during-panic").await;
    let created = app
        .create_order(&customer, &errand("east-canteen", "east-dorm-1"))
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.pay(&customer, &openid, &id).await;
    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(5))
            .await
    );
    assert_eq!(
        app.get_order(&customer, &id).await.body["courier"],
        json!(east_id)
    );
    let counted = eventually(Duration::from_secs(5), || async {
        app.metric(series).await > before
    })
    .await;
    assert!(counted, "main's dispatcher panicked and was restarted");

    // Main's dispatcher is back: it rebuilt from the shards, and its
    // courier comes online again (presence is not durable) and is sent.
    let (main_courier, _) = app.login("main-steady").await;
    let again = app
        .post_as(
            &main_courier,
            "/api/v1/couriers/me/online",
            Some(json!({"place_id": "canteen-1"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let (customer, openid) = app.login("main-after-panic").await;
    let id = app.paid_order(&customer, &openid).await;
    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(5))
            .await
    );
    assert_eq!(
        app.get_order(&customer, &id).await.body["courier"],
        json!(main_id)
    );
    assert!(app.state.dispatch.is_alive());
}

const ADMIN: &str = "campus-admin-token-0123456789abcdef";

#[actix_web::test]
async fn the_admin_api_is_per_campus_and_limited_operators_see_only_theirs() {
    let app = spawn_app_with(|s| {
        s.campus.map = two_campuses();
        s.admin.token = Some(Secret::new(ADMIN));
        s.dispatch.auto = false;
    })
    .await;
    let (_, east_courier) = app.online_courier("east-board", "east-campus-gate").await;
    let (_, main_courier) = app.online_courier("main-board", "library").await;
    let (customer, openid) = app.login("east-board-customer").await;
    let created = app
        .create_order(&customer, &errand("east-station", "east-dorm-1"))
        .await;
    let east_order = created.body["id"].as_str().expect("id").to_owned();
    app.pay(&customer, &openid, &east_order).await;

    let east_board = app.get_as(ADMIN, "/api/v1/admin/live?campus=east").await;
    assert_eq!(east_board.status, StatusCode::OK, "{}", east_board.body);
    let couriers: Vec<&Value> = east_board.body["couriers"]
        .as_array()
        .expect("couriers")
        .iter()
        .map(|c| &c["openid"])
        .collect();
    assert_eq!(couriers, [&json!(east_courier)]);
    assert_eq!(east_board.body["waiting"][0]["order_id"], json!(east_order));
    let main_board = app.get_as(ADMIN, "/api/v1/admin/live").await;
    let couriers: Vec<&Value> = main_board.body["couriers"]
        .as_array()
        .expect("couriers")
        .iter()
        .map(|c| &c["openid"])
        .collect();
    assert_eq!(
        couriers,
        [&json!(main_courier)],
        "the first campus by default"
    );
    assert_eq!(main_board.body["waiting"], json!([]));
    let map = app.get_as(ADMIN, "/api/v1/admin/map?campus=east").await;
    assert_eq!(map.body["campus"], "east");
    assert_eq!(map.body["places"].as_array().map(Vec::len), Some(6));
    let unknown = app.get_as(ADMIN, "/api/v1/admin/map?campus=west").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // An operator limited to east sees east, by default and by name, and
    // nothing of main.
    let added = app
        .post_as(
            ADMIN,
            "/api/v1/admin/operators",
            Some(json!({"name": "east.ops", "role": "dispatcher", "campuses": ["east"]})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let east_ops = added.body["token"].as_str().expect("token").to_owned();
    let theirs = app.get_as(&east_ops, "/api/v1/admin/map").await;
    assert_eq!(theirs.body["campus"], "east", "{}", theirs.body);
    for uri in [
        "/api/v1/admin/map?campus=main",
        "/api/v1/admin/live?campus=main",
        "/api/v1/admin/couriers?campus=main",
    ] {
        let refused = app.get_as(&east_ops, uri).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{uri}: {}",
            refused.body
        );
    }
    // Orders: east's are theirs to find and act on, main's do not exist
    // for them.
    let (main_customer, main_openid) = app.login("main-board-customer").await;
    let main_order = app.paid_order(&main_customer, &main_openid).await;
    let found = app
        .get_as(&east_ops, &format!("/api/v1/admin/orders?q={main_order}"))
        .await;
    assert_eq!(found.body["orders"], json!([]), "{}", found.body);
    let found = app
        .get_as(&east_ops, &format!("/api/v1/admin/orders?q={east_order}"))
        .await;
    assert_eq!(found.body["orders"][0]["campus"], "east", "{}", found.body);
    let reassigned = app
        .post_as(
            &east_ops,
            &format!("/api/v1/admin/orders/{main_order}/reassign"),
            Some(json!({"courier": main_courier})),
        )
        .await;
    assert_eq!(
        reassigned.status,
        StatusCode::NOT_FOUND,
        "{}",
        reassigned.body
    );
    let reassigned = app
        .post_as(
            &east_ops,
            &format!("/api/v1/admin/orders/{east_order}/reassign"),
            Some(json!({"courier": east_courier})),
        )
        .await;
    assert_eq!(reassigned.status, StatusCode::OK, "{}", reassigned.body);
    let offline = app
        .post_as(
            &east_ops,
            &format!("/api/v1/admin/couriers/{main_courier}/offline"),
            None,
        )
        .await;
    assert_eq!(offline.status, StatusCode::NOT_FOUND, "{}", offline.body);
    let today = app.get_as(&east_ops, "/api/v1/admin/today").await;
    assert_eq!(today.body["created"], 1, "east's one order: {}", today.body);
    let everything = app.get_as(ADMIN, "/api/v1/admin/today").await;
    assert_eq!(everything.body["created"], 2, "{}", everything.body);

    let listed = app.get_as(&east_ops, "/api/v1/admin/couriers").await;
    let openids: Vec<&Value> = listed.body["couriers"]
        .as_array()
        .expect("couriers")
        .iter()
        .map(|c| &c["openid"])
        .collect();
    assert!(openids.contains(&&json!(east_courier)), "{}", listed.body);
    assert!(!openids.contains(&&json!(main_courier)), "{}", listed.body);
}

#[actix_web::test]
async fn a_campus_with_its_own_commission_pays_its_couriers_by_it() {
    let app = spawn_app_with(|s| {
        s.campus.map = two_campuses();
        s.dispatch.auto = false;
    })
    .await;
    let mut wallets = Vec::new();
    // East takes 8 %, main money.commission_percent (10 %).
    for (tag, pickup, dropoff, place) in [
        ("east-pay", "east-station", "east-dorm-1", "east-station"),
        ("main-pay", "cainiao-north", "dorm-3", "cainiao-north"),
    ] {
        let (customer, openid) = app.login(&format!("{tag}-customer")).await;
        let mut body = errand(pickup, dropoff);
        body["fee_fen"] = json!(300);
        body["tip_fen"] = json!(50);
        let id = app.create_order(&customer, &body).await.body["id"]
            .as_str()
            .expect("id")
            .to_owned();
        app.pay(&customer, &openid, &id).await;
        let (courier, _) = app.online_courier(&format!("{tag}-courier"), place).await;
        let pending = |w: &Value| w["pending_fen"].clone();
        for step in ["grab", "pickup", "deliver"] {
            let r = app
                .post_as(&courier, &format!("/api/v1/orders/{id}/{step}"), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{step}: {}", r.body);
        }
        let before = app.get_as(&courier, "/api/v1/couriers/me/wallet").await;
        let done = app
            .post_as(&customer, &format!("/api/v1/orders/{id}/confirm"), None)
            .await;
        assert_eq!(done.body["status"], "completed", "{}", done.body);
        let posted = eventually(Duration::from_secs(5), || async {
            let w = app.get_as(&courier, "/api/v1/couriers/me/wallet").await;
            w.body["available_fen"] != json!(0)
        })
        .await;
        assert!(posted, "{tag}: the ledger posted the completion");
        let after = app.get_as(&courier, "/api/v1/couriers/me/wallet").await;
        wallets.push((pending(&before.body), after.body["available_fen"].clone()));
    }
    // East: 300 − ⌊300 × 8 %⌋ + 50 = 326; main: 300 − 30 + 50 = 320. The
    // pending figure shown before completion is the same sum.
    assert_eq!(
        wallets,
        [(json!(326), json!(326)), (json!(320), json!(320))]
    );
}

#[actix_web::test]
async fn a_campus_taken_off_the_map_keeps_its_orders_readable_and_refundable() {
    let dir = tempfile::tempdir().expect("tmp");
    let map = two_campuses().display().to_string();
    let mut app = BinaryApp::start(
        &dir.path().join("data"),
        &[
            ("LASTMILE__CAMPUS__MAP", map.as_str()),
            ("LASTMILE__ADMIN__TOKEN", ADMIN),
            ("LASTMILE__DISPATCH__AUTO", "false"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let (token, _) = app.login(&http, "east-leaver").await;
    let created: Value = http
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .json(&errand("east-station", "east-dorm-1"))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    for (path, auth) in [
        (format!("/api/v1/orders/{id}/pay"), true),
        (format!("/sandbox/pay/{id}"), false),
    ] {
        let mut req = http.post(app.url(&path));
        if auth {
            req = req.bearer_auth(&token);
        }
        assert!(
            req.send().await.expect("pay").status().is_success(),
            "{path}"
        );
    }
    let order_url = app.url(&format!("/api/v1/orders/{id}"));
    let paid = eventually(Duration::from_secs(5), || async {
        get_json(&http, order_url.clone(), &token).await["status"] == "paid"
    })
    .await;
    assert!(paid);

    // East leaves the map: the service starts with the main campus only.
    assert!(app.terminate().is_some_and(|s| s.success()));
    app.set_env(
        "LASTMILE__CAMPUS__MAP",
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/campus.toml"),
    );
    app.launch().await;
    let order = get_json(&http, app.url(&format!("/api/v1/orders/{id}")), &token).await;
    assert_eq!(
        (&order["campus"], &order["status"]),
        (&json!("east"), &json!("paid"))
    );
    let refunded = http
        .post(app.url(&format!("/api/v1/admin/orders/{id}/refund")))
        .bearer_auth(ADMIN)
        .json(&json!({"reason": "the east campus closed"}))
        .send()
        .await
        .expect("refund");
    assert_eq!(refunded.status(), 200);
    let refunded: Value = refunded.json().await.expect("json");
    assert_eq!(refunded["status"], "refunding", "{refunded}");
    app.terminate();
}
