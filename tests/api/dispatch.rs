//! Couriers, matching, grabs and the delivery steps, in process.

use std::time::Duration;

use actix_web::http::StatusCode;
use futures::future::join_all;
use serde_json::json;

use crate::helpers::{eventually, order_body, spawn_app_with};

#[actix_web::test]
async fn a_paid_order_is_matched_delivered_and_completed() {
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(50)).await;
    let (customer, openid) = app.login("dispatch-customer").await;
    let id = app.paid_order(&customer, &openid).await;
    let (courier, courier_id) = app.online_courier("courier-a", "dorm-1").await;

    let assigned = app
        .reaches(&customer, &id, "assigned", Duration::from_secs(5))
        .await;
    assert!(assigned, "matched within a few ticks");
    let order = app.get_order(&customer, &id).await.body;
    assert_eq!(order["courier"], courier_id.as_str());
    let tasks = app.get_as(&courier, "/api/v1/couriers/me/tasks").await.body;
    assert_eq!(tasks["orders"][0]["id"], id.as_str());
    assert_eq!(
        tasks["orders"][0]["pickup_code"], "5-3-2201",
        "the assigned courier sees the code"
    );

    // Only the assigned courier steps; only the customer confirms.
    let (stranger, _) = app.online_courier("courier-b", "dorm-2").await;
    assert_eq!(
        app.post_as(&stranger, &format!("/api/v1/orders/{id}/pickup"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post_as(&customer, &format!("/api/v1/orders/{id}/pickup"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&courier, &format!("/api/v1/orders/{id}/deliver"), None)
            .await
            .status,
        StatusCode::CONFLICT,
        "deliver before pickup"
    );
    assert_eq!(
        app.post_as(&courier, &format!("/api/v1/orders/{id}/pickup"), None)
            .await
            .body["status"],
        "picked_up"
    );
    assert_eq!(
        app.post_as(
            &courier,
            &format!("/api/v1/orders/{id}/deliver"),
            Some(json!({}))
        )
        .await
        .body["status"],
        "delivered"
    );
    assert_eq!(
        app.post_as(&courier, &format!("/api/v1/orders/{id}/confirm"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&customer, &format!("/api/v1/orders/{id}/confirm"), None)
            .await
            .body["status"],
        "completed"
    );
    let tasks = app.get_as(&courier, "/api/v1/couriers/me/tasks").await.body;
    assert_eq!(
        tasks["orders"].as_array().map(Vec::len),
        Some(0),
        "the task list follows"
    );
    assert_eq!(
        app.cancel_order(&customer, &id).await.status,
        StatusCode::CONFLICT
    );
}

#[actix_web::test]
async fn couriers_never_get_their_own_orders_and_never_exceed_capacity() {
    let app = spawn_app_with(|s| {
        s.dispatch.tick = Duration::from_millis(50);
        s.dispatch.max_tasks = 2;
    })
    .await;
    let (courier, courier_id) = app.online_courier("busy-courier", "cainiao-north").await;
    let own = app.paid_order(&courier, &courier_id).await;
    let (customer, openid) = app.login("many-orders").await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(app.paid_order(&customer, &openid).await);
    }
    let two = eventually(Duration::from_secs(5), || {
        let (app, courier) = (&app, &courier);
        async move {
            app.get_as(courier, "/api/v1/couriers/me/tasks").await.body["orders"]
                .as_array()
                .map_or(0, Vec::len)
                == 2
        }
    })
    .await;
    assert!(two, "the courier fills their capacity");
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let tasks = app.get_as(&courier, "/api/v1/couriers/me/tasks").await.body;
    assert_eq!(
        tasks["orders"].as_array().map(Vec::len),
        Some(2),
        "never more than max_tasks"
    );
    assert_eq!(
        app.status_of(&courier, &own).await,
        "paid",
        "never their own order"
    );

    // Grabbing beyond capacity is refused too.
    let waiting = ids
        .iter()
        .find(|id| {
            tasks["orders"]
                .as_array()
                .is_some_and(|a| !a.iter().any(|o| o["id"] == id.as_str()))
        })
        .expect("a waiting order");
    let over = app
        .post_as(&courier, &format!("/api/v1/orders/{waiting}/grab"), None)
        .await;
    assert_eq!(over.status, StatusCode::CONFLICT);
    let own_grab = app
        .post_as(&courier, &format!("/api/v1/orders/{own}/grab"), None)
        .await;
    assert!(own_grab.status.is_client_error());
}

#[actix_web::test]
async fn fifty_concurrent_grabs_one_winner() {
    let app = spawn_app_with(|s| s.dispatch.auto = false).await;
    let (customer, openid) = app.login("grab-me").await;
    let id = app.paid_order(&customer, &openid).await;
    let mut couriers = Vec::new();
    for i in 0..50 {
        couriers.push(app.online_courier(&format!("grabber-{i}"), "dorm-5").await);
    }
    let open = app
        .get_as(&couriers[0].0, "/api/v1/orders/open?near=jd-station")
        .await;
    assert_eq!(open.status, StatusCode::OK);
    assert_eq!(open.body["orders"][0]["id"], id.as_str());
    assert!(
        open.body["orders"][0].get("pickup_code").is_none()
            && open.body["orders"][0].get("customer").is_none()
    );

    let grab_uri = format!("/api/v1/orders/{id}/grab");
    let grabs = couriers
        .iter()
        .map(|(t, _)| app.post_as(t, &grab_uri, None));
    let replies = join_all(grabs).await;
    let winners: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one 200");
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.status == StatusCode::CONFLICT)
            .count(),
        49
    );
    let order = app.get_order(&customer, &id).await.body;
    assert_eq!(order["courier"], winners[0].body["courier"]);
    assert_eq!(order["status"], "assigned");
    assert_eq!(
        app.get_as(&couriers[1].0, "/api/v1/orders/open?near=dorm-5")
            .await
            .body["orders"],
        json!([])
    );
}

#[actix_web::test]
async fn open_orders_and_grab_are_for_online_couriers() {
    let app = spawn_app_with(|s| s.dispatch.auto = false).await;
    let (customer, openid) = app.login("picky").await;
    let id = app.paid_order(&customer, &openid).await;
    let (plain, _) = app.login("not-a-courier").await;
    assert_eq!(
        app.get_as(&plain, "/api/v1/orders/open?near=dorm-1")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post_as(&plain, &format!("/api/v1/orders/{id}/grab"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let (courier, _) = app.online_courier("goes-offline", "dorm-1").await;
    app.post_as(&courier, "/api/v1/couriers/me/offline", None)
        .await;
    assert_eq!(
        app.post_as(&courier, &format!("/api/v1/orders/{id}/grab"), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let bad = [
        json!({"name": "", "phone": "13800138000"}),
        json!({"name": "x", "phone": "23800138000"}),
        json!({"name": "x", "phone": "1380013800"}),
        json!({"name": "x".repeat(33), "phone": "13800138000"}),
        json!({"phone": "13800138000"}),
    ];
    for body in bad {
        let reply = app
            .post_as(&plain, "/api/v1/couriers/me", Some(body.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.code(), "validation");
    }
    let unknown_place = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/online",
            Some(json!({"place_id": "moon"})),
        )
        .await;
    assert_eq!(unknown_place.code(), "validation");
}

#[actix_web::test]
async fn cancel_racing_assignment_ends_cancelled_or_assigned_never_both() {
    for round in 0..5 {
        let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(10)).await;
        let (customer, openid) = app.login(&format!("racer-{round}")).await;
        let id = app.paid_order(&customer, &openid).await;
        let (courier, _) = app.login(&format!("racing-courier-{round}")).await;
        app.post_as(
            &courier,
            "/api/v1/couriers/me",
            Some(json!({"name": "r", "phone": "13800138000"})),
        )
        .await;
        let (cancel, _online) = futures::join!(
            app.cancel_order(&customer, &id),
            app.post_as(
                &courier,
                "/api/v1/couriers/me/online",
                Some(json!({"place_id": "dorm-3"}))
            )
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        // Cancelling is allowed until pickup, assigned or not: it always
        // wins, and the courier never keeps a cancelled task.
        assert_eq!(
            cancel.status,
            StatusCode::OK,
            "round {round}: {}",
            cancel.body
        );
        let order = app.get_order(&customer, &id).await.body;
        assert!(
            matches!(order["status"].as_str(), Some("refunding" | "refunded")),
            "round {round}: {order}"
        );
        assert!(
            order["courier"].is_null(),
            "round {round}: cancelled and assigned"
        );
        let tasks = app.get_as(&courier, "/api/v1/couriers/me/tasks").await.body;
        assert_eq!(tasks["orders"], json!([]), "round {round}");
    }
}

#[actix_web::test]
async fn an_assigned_order_can_be_cancelled_and_the_courier_is_told() {
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(20)).await;
    let (customer, openid) = app.login("cancel-assigned").await;
    let id = app.paid_order(&customer, &openid).await;
    let (courier, _) = app
        .online_courier("cancel-assigned-courier", "dorm-1")
        .await;
    let assigned = app
        .reaches(&customer, &id, "assigned", Duration::from_secs(5))
        .await;
    assert!(assigned);

    let cancelled = app.cancel_order(&customer, &id).await;

    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "refunding");
    assert!(cancelled.body["courier"].is_null());
    let told = eventually(Duration::from_secs(5), || {
        let (app, courier, id) = (&app, &courier, &id);
        async move {
            let tasks = app.get_as(courier, "/api/v1/couriers/me/tasks").await.body;
            tasks["orders"] == json!([])
                && tasks["withdrawn"][0]["order_id"] == id.as_str()
                && tasks["withdrawn"][0]["reason"] == "cancelled"
        }
    })
    .await;
    assert!(told, "the task list tells the courier");
    assert_eq!(
        app.post_as(&courier, &format!("/api/v1/orders/{id}/pickup"), None)
            .await
            .status,
        StatusCode::NOT_FOUND,
        "no longer theirs"
    );
    let refunded = eventually(Duration::from_secs(10), || {
        let sim = app.wechat.pay_simulator();
        async move { !sim.refunds().is_empty() }
    })
    .await;
    assert!(refunded, "the paid order is refunded");
    let picked = app.paid_order(&customer, &openid).await;
    assert!(
        app.reaches(&customer, &picked, "assigned", Duration::from_secs(5))
            .await
    );
    app.post_as(&courier, &format!("/api/v1/orders/{picked}/pickup"), None)
        .await;
    assert_eq!(
        app.cancel_order(&customer, &picked).await.status,
        StatusCode::CONFLICT,
        "after pickup it is too late"
    );
}

#[actix_web::test]
async fn a_silent_courier_expires_and_their_tasks_go_back() {
    let app = spawn_app_with(|s| {
        s.dispatch.tick = Duration::from_millis(20);
        s.dispatch.presence_ttl = Duration::from_millis(400);
        s.dispatch.reassign_after = Duration::from_millis(300);
    })
    .await;
    let (customer, openid) = app.login("silent-customer").await;
    let id = app.paid_order(&customer, &openid).await;
    let (courier, courier_id) = app.online_courier("silent-courier", "dorm-1").await;
    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(5))
            .await
    );
    assert_eq!(
        app.get_order(&customer, &id).await.body["courier"],
        courier_id.as_str()
    );

    // The app died: no online, no location call any more.
    let back = app
        .reaches(&customer, &id, "paid", Duration::from_secs(8))
        .await;

    assert!(
        back,
        "presence expired, then the task went back to the pool"
    );
    let tasks = app.get_as(&courier, "/api/v1/couriers/me/tasks").await.body;
    assert_eq!(tasks["orders"], json!([]));
    assert_eq!(tasks["withdrawn"][0]["reason"], "reassigned");
    let open = app
        .get_as(&courier, "/api/v1/orders/open?near=dorm-1")
        .await;
    assert_eq!(
        open.status,
        StatusCode::FORBIDDEN,
        "an expired courier is offline"
    );
    // A location call does not bring them back online.
    let located = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/location",
            Some(json!({"place_id": "dorm-2"})),
        )
        .await;
    assert_eq!(located.status, StatusCode::OK);
    assert_eq!(located.body["online"], false);
}

#[actix_web::test]
async fn location_calls_keep_a_courier_online() {
    let app = spawn_app_with(|s| s.dispatch.presence_ttl = Duration::from_millis(400)).await;
    let (courier, _) = app.online_courier("chatty-courier", "dorm-1").await;
    for _ in 0..6 {
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
        let located = app
            .post_as(
                &courier,
                "/api/v1/couriers/me/location",
                Some(json!({"place_id": "dorm-2"})),
            )
            .await;
        assert_eq!(located.body["online"], true, "{}", located.body);
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let located = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/location",
            Some(json!({"place_id": "dorm-2"})),
        )
        .await;
    assert_eq!(located.body["online"], false, "silent past presence_ttl");
}

#[actix_web::test]
async fn the_task_list_is_for_couriers_only() {
    let app = spawn_app_with(|_| {}).await;
    let (user, _) = app.login("not-a-courier").await;
    let reply = app.get_as(&user, "/api/v1/couriers/me/tasks").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "forbidden");
}

#[actix_web::test]
async fn delivered_orders_complete_themselves_and_offline_couriers_give_back_tasks() {
    let app = spawn_app_with(|s| {
        s.dispatch.tick = Duration::from_millis(50);
        s.orders.auto_confirm = Duration::from_millis(300);
        s.dispatch.reassign_after = Duration::from_millis(300);
    })
    .await;
    let (customer, openid) = app.login("auto").await;
    let first = app.paid_order(&customer, &openid).await;
    let (courier, courier_id) = app.online_courier("auto-courier", "dorm-1").await;
    let assigned = |id: String| {
        let (app, customer) = (&app, &customer);
        async move {
            eventually(Duration::from_secs(5), || {
                let id = id.clone();
                async move { app.status_of(customer, &id).await == "assigned" }
            })
            .await
        }
    };
    assert!(assigned(first.clone()).await);
    app.post_as(&courier, &format!("/api/v1/orders/{first}/pickup"), None)
        .await;
    app.post_as(&courier, &format!("/api/v1/orders/{first}/deliver"), None)
        .await;
    let completed = app
        .reaches(&customer, &first, "completed", Duration::from_secs(5))
        .await;
    assert!(completed, "auto-confirm after orders.auto_confirm");

    let second = app.paid_order(&customer, &openid).await;
    assert!(assigned(second.clone()).await);
    app.post_as(&courier, "/api/v1/couriers/me/offline", None)
        .await;
    let back = app
        .reaches(&customer, &second, "paid", Duration::from_secs(8))
        .await;
    assert!(back, "an untouched task goes back to the pool");
    let (other, other_id) = app.online_courier("second-courier", "dorm-2").await;
    assert!(assigned(second.clone()).await);
    assert_eq!(
        app.get_order(&customer, &second).await.body["courier"],
        other_id.as_str()
    );
    assert_ne!(other_id, courier_id);
    let _ = other;
    let _ = order_body();
}

#[actix_web::test]
async fn a_couriers_phone_position_lands_them_at_the_nearest_place() {
    let app = spawn_app_with(|_| {}).await;
    let (courier, _) = app.online_courier("gps-courier", "north-gate").await;
    let campus = app.state.campuses.first();
    let dorm3 = campus.place("dorm-3").expect("dorm-3");
    // A few metres off dorm 3, as wx.getLocation would give it.
    let (lat, lon) = campus
        .position_of(dorm3.x + 4.0, dorm3.y - 3.0)
        .expect("the map has an origin");

    let moved = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/location",
            Some(json!({"latitude": lat, "longitude": lon})),
        )
        .await;

    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["place_id"], "dorm-3");
    assert_eq!(moved.body["online"], true);
    let online = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/online",
            Some(json!({"latitude": lat, "longitude": lon})),
        )
        .await;
    assert_eq!(online.body["place_id"], "dorm-3");
    let cases = [
        (
            json!({"latitude": lat + 0.1, "longitude": lon}),
            "11 km north",
        ),
        (
            json!({"latitude": 95.0, "longitude": lon}),
            "no such latitude",
        ),
        (json!({"latitude": lat}), "longitude missing"),
        (json!({}), "nothing"),
    ];
    for (body, why) in cases {
        let reply = app
            .post_as(&courier, "/api/v1/couriers/me/location", Some(body))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(reply.code(), "validation", "{why}");
    }
    let wrong_type = app
        .post_as(
            &courier,
            "/api/v1/couriers/me/location",
            Some(json!({"latitude": "40.0", "longitude": 116.3})),
        )
        .await;
    assert_eq!(wrong_type.code(), "bad_request");
}

#[actix_web::test]
async fn a_courier_is_not_sent_before_the_takeout_is_ready() {
    use time::format_description::well_known::Rfc3339;
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(50)).await;
    let (customer, openid) = app.login("early-takeout").await;
    let ready = (time::OffsetDateTime::now_utc() + time::Duration::seconds(3))
        .format(&Rfc3339)
        .expect("formats");
    let mut body = order_body();
    body["kind"] = "takeout".into();
    body["ready_at"] = ready.into();
    let created = app.create_order(&customer, &body).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    app.pay(&customer, &openid, &id).await;
    // The courier stands at the pickup place: no trip, so nothing to gain
    // by sending them before the food is ready.
    app.online_courier("early-courier", "cainiao-north").await;

    actix_web::rt::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        app.status_of(&customer, &id).await,
        "paid",
        "not sent early"
    );

    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(6))
            .await,
        "sent once the food is ready"
    );
}

#[actix_web::test]
async fn assigned_orders_show_an_eta_and_the_courier_a_route_pickups_first() {
    use time::format_description::well_known::Rfc3339;
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(20)).await;
    let (customer, openid) = app.login("eta-customer").await;
    let unpaid = app.create_order(&customer, &order_body()).await;
    assert!(unpaid.body["eta"].is_null(), "no courier, no eta");
    let first = app.paid_order(&customer, &openid).await;
    let second = app.paid_order(&customer, &openid).await;
    let (courier, courier_id) = app.online_courier("eta-courier", "cainiao-north").await;
    for id in [&first, &second] {
        assert!(
            app.reaches(&customer, id, "assigned", Duration::from_secs(5))
                .await
        );
    }

    let tasks = app.get_as(&courier, "/api/v1/couriers/me/tasks").await.body;

    let route = tasks["route"].as_array().expect("route");
    assert_eq!(route.len(), 4, "{tasks}");
    let position = |id: &str, action: &str| {
        route
            .iter()
            .position(|s| s["order_id"] == id && s["action"] == action)
            .expect("stop")
    };
    for id in [&first, &second] {
        assert!(
            position(id, "pickup") < position(id, "dropoff"),
            "pickup before drop-off"
        );
        assert_eq!(route[position(id, "pickup")]["place_id"], "cainiao-north");
        assert_eq!(route[position(id, "dropoff")]["place_id"], "dorm-3");
    }
    let times: Vec<time::OffsetDateTime> = route
        .iter()
        .map(|s| {
            time::OffsetDateTime::parse(s["eta"].as_str().expect("eta"), &Rfc3339)
                .expect("RFC 3339")
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "stops in time order"
    );
    let order = app.get_order(&customer, &first).await.body;
    assert_eq!(order["courier"], courier_id.as_str());
    let eta =
        time::OffsetDateTime::parse(order["eta"].as_str().expect("eta once assigned"), &Rfc3339)
            .expect("RFC 3339");
    let planned = times[position(&first, "dropoff")];
    assert!(
        (eta - planned).abs() < time::Duration::seconds(2),
        "{eta} vs {planned}"
    );
    assert!(eta > time::OffsetDateTime::now_utc(), "in the future");
    let picked = app
        .post_as(&courier, &format!("/api/v1/orders/{first}/pickup"), None)
        .await;
    assert!(
        picked.body["eta"].is_string(),
        "still on its way: {}",
        picked.body
    );
    let delivered = app
        .post_as(&courier, &format!("/api/v1/orders/{first}/deliver"), None)
        .await;
    assert!(delivered.body["eta"].is_null(), "handed over");
}

#[actix_web::test]
async fn two_orders_from_one_pickup_place_go_to_one_courier_as_a_bundle() {
    let app = spawn_app_with(|s| s.dispatch.tick = Duration::from_millis(20)).await;
    let (customer, openid) = app.login("bundle-customer").await;
    let (near, near_id) = app.online_courier("bundle-near", "cainiao-north").await;
    let (_far, _) = app.online_courier("bundle-far", "north-gate").await;
    let mut ids = Vec::new();
    for dropoff in ["dorm-3", "dorm-4"] {
        let mut body = order_body();
        body["dropoff"]["place_id"] = dropoff.into();
        let id = app.create_order(&customer, &body).await.body["id"]
            .as_str()
            .expect("id")
            .to_owned();
        app.pay(&customer, &openid, &id).await;
        ids.push(id);
    }

    for id in &ids {
        assert!(
            app.reaches(&customer, id, "assigned", Duration::from_secs(5))
                .await
        );
        assert_eq!(
            app.get_order(&customer, id).await.body["courier"],
            near_id.as_str(),
            "both to the courier at the pickup place"
        );
    }
    let route = app.get_as(&near, "/api/v1/couriers/me/tasks").await.body["route"].clone();
    let actions: Vec<&str> = route
        .as_array()
        .expect("route")
        .iter()
        .map(|s| s["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        ["pickup", "pickup", "dropoff", "dropoff"],
        "one trip: both picked up, then both dropped off"
    );
}

#[actix_web::test]
async fn an_order_past_the_click_to_door_limit_is_still_delivered() {
    let app = spawn_app_with(|s| {
        s.dispatch.tick = Duration::from_millis(20);
        s.dispatch.target = Duration::from_millis(500);
        s.dispatch.max = Duration::from_secs(1);
    })
    .await;
    let (customer, openid) = app.login("late-customer").await;
    let id = app.paid_order(&customer, &openid).await;
    // Nobody online until the order is past `dispatch.max`: late beats never.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.status_of(&customer, &id).await, "paid");
    let (_, courier_id) = app.online_courier("late-courier", "dorm-1").await;

    assert!(
        app.reaches(&customer, &id, "assigned", Duration::from_secs(5))
            .await,
        "sent as soon as a courier appears"
    );
    assert_eq!(
        app.get_order(&customer, &id).await.body["courier"],
        courier_id.as_str()
    );
}
