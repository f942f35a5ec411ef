//! The rules the handlers enforce, written into the document's schemas, so
//! that a client generated from it refuses what the service refuses and an
//! independent fuzzer (schemathesis) finds no request the two judge apart.
//! Some rules depend on the campus map (its place ids, the box of phone
//! positions taken as on campus), so the document is finished per map.
//!
//! Each pattern here mirrors one parser in `lastmile_actors::domain`;
//! `tests/api/openapi.rs` runs schemathesis against the result.

use lastmile_actors::campus::Campuses;
use serde_json::{json, Map, Value};

/// Free text (`parse_text`): anything but control characters, except
/// newline and tab.
const TEXT: &str = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$";
/// A form_id: no control characters at all.
const NO_CONTROL: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";
/// An RFC 3339 time (its window, now to 24 h ahead, is relative to the
/// clock and stated in the description only).
const RFC3339: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";
/// An order id: WeChat Pay's `out_trade_no`.
const ORDER_ID: &str = "^[A-Za-z0-9]{1,32}$";
/// A list cursor: an order id, or empty for the first page.
const CURSOR: &str = "^[A-Za-z0-9]{0,32}$";
/// An openid as WeChat issues them.
const OPENID: &str = "^[A-Za-z0-9_-]{1,64}$";
/// An order id or an openid (the console's search): an order id's
/// characters are a subset of an openid's.
const ORDER_OR_OPENID: &str = OPENID;
/// A mainland mobile number.
const PHONE: &str = "^1[0-9]{10}$";
/// A wx.login code.
const LOGIN_CODE: &str = "^[!-~]{1,128}$";
/// A subscribe-message template id.
const TEMPLATE_ID: &str = "^[!-~]{1,128}$";
/// An Idempotency-Key.
const IDEMPOTENCY_KEY: &str = "^[!-~]{1,64}$";
/// A wxacode scene (WeChat's own character set, at most 32).
const SCENE: &str = "^[A-Za-z0-9!#$&'()*+,/:;=?@._~-]{1,32}$";
/// A withdrawal id (also the transfer's `out_bill_no`).
const WITHDRAWAL_ID: &str = "^W[0-9A-V]{31}$";
/// An upload id.
const UPLOAD_ID: &str = "^U[0-9A-V]{31}$";
/// A mini-program page path (no leading slash).
const PAGE: &str = "^([A-Za-z0-9_-][A-Za-z0-9/_-]{0,127})?$";
/// An object key under `/files/`.
const FILE_KEY: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";

/// Writes every rule into `doc` (the document as JSON).
pub fn apply(doc: &mut Value, campuses: &Campuses) {
    // Every campus's places, each id once: a schema cannot say which
    // pairs share a campus, so a pair across two answers 400.
    let mut ids: Vec<&str> = campuses
        .iter()
        .flat_map(|c| c.places().iter().map(|p| p.id.as_str()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let places: Vec<Value> = ids.into_iter().map(|id| json!(id)).collect();
    let campus_ids: Vec<Value> = campuses.iter().map(|c| json!(c.id())).collect();
    let min_fen = campuses
        .iter()
        .map(|c| c.pricing().min_fen)
        .min()
        .unwrap_or(1);
    bodies(doc, &places);
    merge(
        doc.pointer_mut("/components/schemas/CreateOrderBody/properties/fee_fen"),
        json!({"minimum": min_fen}),
    );
    merge(
        doc.pointer_mut("/components/schemas/CreateOrderBody/properties/campus"),
        json!({"enum": campus_ids}),
    );
    for (name, rule) in [
        ("pickup", json!({"enum": places})),
        ("dropoff", json!({"enum": places})),
        ("campus", json!({"enum": campus_ids})),
    ] {
        merge(parameter(doc, "/api/v1/price", "get", name), rule);
    }
    merge(
        doc.pointer_mut("/components/schemas/PlaceBody/properties/campus"),
        json!({"enum": campus_ids}),
    );
    // Operators are limited to campuses served here (400 naming them else).
    merge(
        doc.pointer_mut("/components/schemas/AddOperatorBody/properties/campuses"),
        json!({"items": {"type": "string", "enum": campus_ids}}),
    );
    for path in [
        "/api/v1/admin/map",
        "/api/v1/admin/live",
        "/api/v1/admin/couriers",
        "/api/v1/admin/today",
    ] {
        merge(
            parameter(doc, path, "get", "campus"),
            json!({"enum": campus_ids}),
        );
    }
    place_body(doc, campuses, &places);
    parameters(doc, &places);
    callbacks(doc);
    photos(doc);
    links(doc);
}

/// An upload's body is the photo's bytes: a string of binary, whose being
/// a whole JPEG or PNG no JSON Schema can state (the handler decodes it).
fn photos(doc: &mut Value) {
    let schema = json!({"type": "string", "format": "binary"});
    let both = json!({
        "image/jpeg": {"schema": schema},
        "image/png": {"schema": schema},
    });
    for pointer in [
        "/paths/~1api~1v1~1uploads/post/requestBody/content",
        "/paths/~1api~1v1~1uploads~1{id}/get/responses/200/content",
    ] {
        match doc.pointer_mut(pointer) {
            Some(content) => *content = both.clone(),
            None => debug_assert!(false, "no {pointer} to describe"),
        }
    }
}

/// A created order's id leads to every operation on `/orders/{id}`, a
/// withdrawal's to the operators' decisions on it (OpenAPI links: a
/// client, or a fuzzer, can follow the flow).
fn links(doc: &mut Value) {
    link_ids(
        doc,
        "/paths/~1api~1v1~1orders/post/responses/201",
        &["/api/v1/orders/{id}", "/sandbox/pay/{id}"],
    );
    link_ids(
        doc,
        "/paths/~1api~1v1~1uploads/post/responses/201",
        &["/api/v1/uploads/{id}"],
    );
    link_ids(
        doc,
        "/paths/~1api~1v1~1couriers~1me~1withdrawals/post/responses/201",
        &[
            "/api/v1/admin/withdrawals/{id}",
            "/api/v1/couriers/me/withdrawals/{id}",
        ],
    );
}

/// Links from the response at `from` (whose body has the `id`) to every
/// operation under the `targets` prefixes.
fn link_ids(doc: &mut Value, from: &str, targets: &[&str]) {
    let Some(paths) = doc.pointer("/paths").and_then(Value::as_object) else {
        return;
    };
    let mut links = Map::new();
    for (path, item) in paths {
        if !targets.iter().any(|t| path.starts_with(t)) {
            continue;
        }
        for method in item.as_object().into_iter().flat_map(|o| o.keys()) {
            let name = format!("{method} {path}")
                .replace(['/', '{', '}', ' '], "_")
                .trim_matches('_')
                .to_owned();
            links.insert(
                name,
                json!({
                    "operationRef": format!("#/paths/{}/{method}", path.replace('/', "~1")),
                    "parameters": {"id": "$response.body#/id"},
                }),
            );
        }
    }
    merge(doc.pointer_mut(from), json!({"links": links}));
}

fn bodies(doc: &mut Value, places: &[Value]) {
    let text =
        |min: usize, max: usize| json!({"minLength": min, "maxLength": max, "pattern": TEXT});
    let rules = [
        ("LoginBody", "code", json!({"pattern": LOGIN_CODE})),
        ("RegisterBody", "name", text(1, 32)),
        ("RegisterBody", "phone", json!({"pattern": PHONE})),
        ("LocationBody", "place_id", json!({"enum": places})),
        ("LocationBody", "detail", text(1, 200)),
        ("CreateOrderBody", "pickup_code", text(0, 32)),
        ("CreateOrderBody", "note", text(0, 200)),
        ("CreateOrderBody", "ready_at", json!({"pattern": RFC3339})),
        (
            "FormIdsBody",
            "form_ids",
            json!({"maxItems": 100, "items": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_CONTROL}}),
        ),
        (
            "SubscriptionsBody",
            "template_ids",
            json!({"maxItems": 20, "items": {"type": "string", "pattern": TEMPLATE_ID}}),
        ),
        ("ReassignBody", "courier", json!({"pattern": OPENID})),
        ("RefundBody", "reason", text(1, 200)),
        ("RejectBody", "reason", text(1, 200)),
        ("RegisterBody", "student_no", text(1, 32)),
        (
            "AddOperatorBody",
            "name",
            json!({"pattern": "^[A-Za-z0-9_.-]{1,32}$", "not": {"const": "admin"}}),
        ),
        (
            "AddOperatorBody",
            "role",
            json!({"enum": ["viewer", "dispatcher", "finance", "admin"]}),
        ),
        ("RegisterBody", "card_photo", json!({"pattern": UPLOAD_ID})),
        ("ReasonBody", "reason", text(1, 200)),
        ("ReleaseBody", "reason", text(1, 200)),
        ("SuspendBody", "reason", text(1, 200)),
        ("SuspendBody", "until", json!({"pattern": RFC3339})),
        (
            "CreateOrderBody",
            "contact_phone",
            json!({"pattern": PHONE}),
        ),
        ("DeliverBody", "photo", json!({"pattern": UPLOAD_ID})),
        ("DisputeBody", "text", text(0, 200)),
        (
            "DisputeBody",
            "photos",
            json!({"maxItems": 3, "items": {"type": "string", "pattern": UPLOAD_ID}}),
        ),
        ("ResolveBody", "note", text(1, 200)),
    ];
    for (schema, property, rule) in rules {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        merge(doc.pointer_mut(&pointer), rule);
    }
}

/// `{"place_id"}` (a map place) or `{"latitude", "longitude"}` inside the
/// campus box; the place wins when both are sent, so the position is
/// checked only without one.
fn place_body(doc: &mut Value, campuses: &Campuses, places: &[Value]) {
    let Some(schema) = doc.pointer_mut("/components/schemas/PlaceBody") else {
        return;
    };
    let mut choices = vec![json!({
        "title": "AtPlace",
        "type": "object",
        "required": ["place_id"],
        "properties": {"place_id": {"type": "string", "enum": places}},
    })];
    for b in campuses.iter().filter_map(|c| c.bounds()) {
        choices.push(json!({
            "title": "AtPosition",
            "type": "object",
            "required": ["latitude", "longitude"],
            "properties": {
                "place_id": {"type": "null"},
                "latitude": {"type": "number", "minimum": b.latitude.0, "maximum": b.latitude.1},
                "longitude": {"type": "number", "minimum": b.longitude.0, "maximum": b.longitude.1},
            },
        }));
    }
    merge(Some(schema), json!({"anyOf": choices}));
}

fn parameters(doc: &mut Value, places: &[Value]) {
    let rules = [
        (
            "/api/v1/orders",
            "get",
            "cursor",
            json!({"pattern": CURSOR}),
        ),
        (
            "/api/v1/orders",
            "post",
            "Idempotency-Key",
            json!({"pattern": IDEMPOTENCY_KEY}),
        ),
        (
            "/api/v1/couriers/me/withdrawals",
            "get",
            "cursor",
            json!({"pattern": "^(W[0-9A-V]{31})?$"}),
        ),
        (
            "/api/v1/admin/withdrawals",
            "get",
            "cursor",
            json!({"pattern": "^(W[0-9A-V]{31})?$"}),
        ),
        (
            "/api/v1/couriers/me/withdrawals",
            "post",
            "Idempotency-Key",
            json!({"pattern": IDEMPOTENCY_KEY}),
        ),
        (
            "/api/v1/orders/open",
            "get",
            "near",
            json!({"enum": places}),
        ),
        (
            "/api/v1/share-code",
            "get",
            "scene",
            json!({"pattern": SCENE}),
        ),
        (
            "/api/v1/share-code",
            "get",
            "page",
            json!({"pattern": PAGE}),
        ),
        (
            "/api/v1/admin/orders",
            "get",
            "q",
            json!({"pattern": ORDER_OR_OPENID}),
        ),
        (
            "/api/v1/admin/couriers/{openid}/offline",
            "post",
            "openid",
            json!({"pattern": OPENID}),
        ),
        (
            "/api/v1/admin/operators/{name}/revoke",
            "post",
            "name",
            json!({"pattern": "^[A-Za-z0-9_.-]{1,32}$"}),
        ),
        (
            "/api/v1/admin/users/{openid}/block",
            "post",
            "openid",
            json!({"pattern": OPENID}),
        ),
        (
            "/api/v1/admin/users/{openid}/unblock",
            "post",
            "openid",
            json!({"pattern": OPENID}),
        ),
        (
            "/api/v1/admin/couriers/{openid}/approve",
            "post",
            "openid",
            json!({"pattern": OPENID}),
        ),
        (
            "/api/v1/admin/couriers/{openid}/reject",
            "post",
            "openid",
            json!({"pattern": OPENID}),
        ),
        (
            "/api/v1/admin/couriers/{openid}/suspend",
            "post",
            "openid",
            json!({"pattern": OPENID}),
        ),
        (
            "/api/v1/admin/couriers/{openid}/reinstate",
            "post",
            "openid",
            json!({"pattern": OPENID}),
        ),
        ("/files/{name}", "get", "name", json!({"pattern": FILE_KEY})),
        (
            "/sandbox/fail-sends/{n}",
            "post",
            "n",
            json!({"format": "uint32", "maximum": u32::MAX}),
        ),
    ];
    for (path, method, name, rule) in rules {
        merge(parameter(doc, path, method, name), rule);
    }
    // Every `{id}` is an order id, but a withdrawal's and an upload's.
    let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.contains("{id}") {
            continue;
        }
        let pattern = if path.contains("/withdrawals/") {
            WITHDRAWAL_ID
        } else if path.contains("/uploads/") {
            UPLOAD_ID
        } else {
            ORDER_ID
        };
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            merge(named(operation, "id"), json!({"pattern": pattern}));
        }
    }
}

/// WeChat Pay's callbacks: XML carries text only, so a JSON Schema type
/// could not tell a well-typed callback from another; the body is any XML
/// WeChat Pay sends, answered 200 with SUCCESS or FAIL (its fields and
/// signature are checked by the handler).
fn callbacks(doc: &mut Value) {
    for path in ["/api/v1/wechat/pay/notify", "/api/v1/wechat/refund/notify"] {
        let pointer = format!("/paths/{}/post/requestBody", path.replace('/', "~1"));
        merge(doc.pointer_mut(&pointer), json!({"required": false}));
        if let Some(schema) = doc.pointer_mut(&format!("{pointer}/content/text~1xml/schema")) {
            *schema = json!({"description": "WeChat Pay's XML, as it sends it"});
        }
    }
}

/// The parameter `name` of an operation.
fn parameter<'a>(
    doc: &'a mut Value,
    path: &str,
    method: &str,
    name: &str,
) -> Option<&'a mut Value> {
    let pointer = format!("/paths/{}/{method}", path.replace('/', "~1"));
    named(doc.pointer_mut(&pointer)?, name)
}

fn named<'a>(operation: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    operation
        .get_mut("parameters")?
        .as_array_mut()?
        .iter_mut()
        .find(|p| p["name"] == name)?
        .get_mut("schema")
}

/// Adds `rule`'s keys to the schema at `target`. A missing target is a bug
/// in the tables above: debug builds stop on it, and in release the
/// schemathesis test finds the rule the document then lacks.
pub fn merge(target: Option<&mut Value>, rule: Value) {
    let (Some(Value::Object(target)), Value::Object(rule)) = (target, rule) else {
        debug_assert!(false, "no schema to constrain");
        return;
    };
    target.extend::<Map<String, Value>>(rule);
}
