//! Contact details: the customer's `contact_phone` is shown only to the
//! customer and the assigned courier, the courier's `courier_contact` only
//! to the customer from assignment until completion. Every route that
//! answers an order is asked, by every kind of caller, through a whole
//! life: placed, grabbed, given back, grabbed by another, delivered,
//! disputed, resolved.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use lastmile_actors::wechat::Secret;
use serde_json::{json, Value};

use crate::helpers::{order_body, spawn_app_with, Reply};

const TOKEN: &str = "contact-operator-token-0123";
const CUSTOMER_PHONE: &str = "13912345678";
const FIRST_PHONE: &str = "13700000001";
const SECOND_PHONE: &str = "13700000002";

/// Every order in a reply (a single order, a page, a task list, a search).
fn orders_in(body: &Value) -> Vec<Value> {
    if let Some(list) = body["orders"].as_array() {
        return list.clone();
    }
    if body["id"].is_string() {
        return vec![body.clone()];
    }
    Vec::new()
}

/// The one order `id` in a reply.
fn order_in(reply: &Reply, id: &str) -> Value {
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);
    orders_in(&reply.body)
        .into_iter()
        .find(|o| o["id"] == id)
        .unwrap_or_else(|| panic!("order {id} is not in {}", reply.body))
}

/// Neither phone appears anywhere in what someone else was answered.
fn shows_no_phone(reply: &Reply, who: &str) {
    let text = reply.body.to_string();
    for phone in [CUSTOMER_PHONE, FIRST_PHONE, SECOND_PHONE] {
        assert!(!text.contains(phone), "{who} was shown {phone}: {text}");
    }
}

fn customer_sees(order: &Value, courier: Option<(&str, &str)>) {
    assert_eq!(order["contact_phone"], CUSTOMER_PHONE, "{order}");
    match courier {
        Some((name, phone)) => assert_eq!(
            order["courier_contact"],
            json!({"name": name, "phone": phone}),
            "{order}"
        ),
        None => assert_eq!(order["courier_contact"], Value::Null, "{order}"),
    }
}

fn courier_sees(order: &Value) {
    assert_eq!(order["contact_phone"], CUSTOMER_PHONE, "{order}");
    assert_eq!(order["courier_contact"], Value::Null, "{order}");
}

#[actix_web::test]
async fn contact_details_go_only_between_the_customer_and_the_assigned_courier() {
    let app = spawn_app_with(|s| {
        s.admin.token = Some(Secret::new(TOKEN));
        s.dispatch.auto = false;
    })
    .await;
    let admin = |req: TestRequest| req.insert_header(("Authorization", format!("Bearer {TOKEN}")));
    let (customer, customer_id) = app.login("contact-customer").await;
    let (stranger, _) = app.login("contact-stranger").await;
    let mut couriers = Vec::new();
    for (code, name, phone) in [
        ("contact-first", "王一", FIRST_PHONE),
        ("contact-second", "王二", SECOND_PHONE),
    ] {
        let (token, _) = app.login(code).await;
        let reg = app
            .post_as(
                &token,
                "/api/v1/couriers/me",
                Some(json!({"name": name, "phone": phone})),
            )
            .await;
        assert_eq!(reg.status, StatusCode::OK, "{}", reg.body);
        let on = app
            .post_as(
                &token,
                "/api/v1/couriers/me/online",
                Some(json!({"place_id": "cainiao-north"})),
            )
            .await;
        assert_eq!(on.status, StatusCode::OK, "{}", on.body);
        couriers.push(token);
    }
    let (first, second) = (couriers[0].clone(), couriers[1].clone());

    let mut body = order_body();
    body["contact_phone"] = json!(CUSTOMER_PHONE);
    let created = app.create_order(&customer, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    customer_sees(&created.body, None);
    let order_uri = format!("/api/v1/orders/{id}");
    let search = format!("/api/v1/admin/orders?q={id}");

    // What everyone else is answered at each point of the order's life.
    let check_outsiders = |label: &'static str, assigned: Option<String>| {
        let (app, stranger, first, second, search) = (&app, &stranger, &first, &second, &search);
        let order_uri = order_uri.clone();
        async move {
            let not_assigned: Vec<&String> = [first, second]
                .into_iter()
                .filter(|c| assigned.as_ref() != Some(*c))
                .collect();
            for who in std::iter::once(stranger).chain(not_assigned) {
                let reply = app.get_as(who, &order_uri).await;
                assert_eq!(
                    reply.status,
                    StatusCode::NOT_FOUND,
                    "{label}: {}",
                    reply.body
                );
                shows_no_phone(&reply, label);
                let open = app
                    .get_as(who, "/api/v1/orders/open?near=cainiao-north")
                    .await;
                shows_no_phone(&open, label);
                let tasks = app.get_as(who, "/api/v1/couriers/me/tasks").await;
                shows_no_phone(&tasks, label);
            }
            let found = app.send(admin(TestRequest::get().uri(search))).await;
            assert_eq!(found.status, StatusCode::OK, "{}", found.body);
            let order = &found.body["orders"][0];
            assert_eq!(order["contact_phone"], Value::Null, "{label}: {order}");
            assert_eq!(order["courier_contact"], Value::Null, "{label}: {order}");
            shows_no_phone(&found, "an operator");
        }
    };

    // Awaiting payment, then paid and waiting.
    customer_sees(&order_in(&app.get_order(&customer, &id).await, &id), None);
    check_outsiders("unpaid", None).await;
    app.pay(&customer, &customer_id, &id).await;
    customer_sees(&order_in(&app.list_orders(&customer, "").await, &id), None);
    check_outsiders("paid", None).await;

    // The first courier grabs it, then gives it back.
    let grabbed = app
        .post_as(&first, &format!("/api/v1/orders/{id}/grab"), None)
        .await;
    courier_sees(&order_in(&grabbed, &id));
    courier_sees(&order_in(&app.get_order(&first, &id).await, &id));
    courier_sees(&order_in(
        &app.get_as(&first, "/api/v1/couriers/me/tasks").await,
        &id,
    ));
    customer_sees(
        &order_in(&app.get_order(&customer, &id).await, &id),
        Some(("王一", FIRST_PHONE)),
    );
    check_outsiders("with the first courier", Some(first.clone())).await;
    let released = app
        .post_as(
            &first,
            &format!("/api/v1/orders/{id}/release"),
            Some(json!({"reason": "临时有课"})),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.body);
    shows_no_phone(&released, "a courier who gave it back");
    customer_sees(&order_in(&app.get_order(&customer, &id).await, &id), None);
    check_outsiders("given back", None).await;

    // The second courier carries it to the end.
    let grabbed = app
        .post_as(&second, &format!("/api/v1/orders/{id}/grab"), None)
        .await;
    courier_sees(&order_in(&grabbed, &id));
    for step in ["pickup", "deliver"] {
        let reply = app
            .post_as(&second, &format!("/api/v1/orders/{id}/{step}"), None)
            .await;
        courier_sees(&order_in(&reply, &id));
        customer_sees(
            &order_in(&app.get_order(&customer, &id).await, &id),
            Some(("王二", SECOND_PHONE)),
        );
        check_outsiders("with the second courier", Some(second.clone())).await;
    }
    let disputed = app
        .post_as(
            &customer,
            &format!("/api/v1/orders/{id}/dispute"),
            Some(json!({"reason": "damaged"})),
        )
        .await;
    customer_sees(&order_in(&disputed, &id), Some(("王二", SECOND_PHONE)));
    courier_sees(&order_in(
        &app.get_as(&second, "/api/v1/couriers/me/tasks").await,
        &id,
    ));
    let queue = app
        .send(admin(TestRequest::get().uri("/api/v1/admin/disputes")))
        .await;
    assert_eq!(order_in(&queue, &id)["status"], "disputed");
    shows_no_phone(&queue, "an operator");
    check_outsiders("disputed", Some(second.clone())).await;
    let resolved = app
        .send(admin(
            TestRequest::post()
                .uri(&format!("/api/v1/admin/orders/{id}/resolve"))
                .set_json(json!({"refund_fen": 0, "note": "无损坏"})),
        ))
        .await;
    assert_eq!(resolved.body["status"], "completed", "{}", resolved.body);
    shows_no_phone(&resolved, "an operator");

    // Completed: the customer no longer sees who carried it.
    customer_sees(&order_in(&app.get_order(&customer, &id).await, &id), None);
    check_outsiders("completed", Some(second.clone())).await;

    // A cancelled order answers the customer alone, with their own phone.
    let created = app.create_order(&customer, &body).await;
    let other = created.body["id"].as_str().expect("id").to_owned();
    let cancelled = app.cancel_order(&customer, &other).await;
    customer_sees(&order_in(&cancelled, &other), None);

    // An order without a phone shows none; a bad phone is refused, naming it.
    let plain = app.create_order(&customer, &order_body()).await;
    assert_eq!(plain.body["contact_phone"], Value::Null);
    for bad in [json!("12345"), json!("23800138000"), json!(13800138000u64)] {
        let mut body = order_body();
        body["contact_phone"] = bad.clone();
        let reply = app.create_order(&customer, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("contact_phone") || reply.code() == "bad_request",
            "{bad}: {message}"
        );
    }
}
