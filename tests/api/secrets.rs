//! Secrets never reach a log line, and live mode refuses to start on the
//! public sandbox credentials or without what it needs.

use std::path::Path;

use md5::{Digest, Md5};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{free_port, BinaryApp};

const LIVE_SECRET: &str = "LIVE-SECRET-7f3a9c1e5b";
const LIVE_KEY: &str = "LIVEKEY0123456789abcdefLIVEKEY99";
pub(crate) const LIVE_V3_KEY: &str = "LIVEV3KEY456789abcdefLIVEV3KEY99";

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Environment variables for the binary.
pub(crate) type Env = Vec<(&'static str, String)>;

/// A complete live configuration; each case below breaks one key.
pub(crate) fn live_env() -> Env {
    vec![
        ("LASTMILE__WECHAT__MODE", "live".into()),
        ("LASTMILE__WECHAT__APPID", "wxlive0000000001".into()),
        ("LASTMILE__WECHAT__SECRET", LIVE_SECRET.into()),
        ("LASTMILE__WECHAT__API_KEY", LIVE_KEY.into()),
        (
            "LASTMILE__WECHAT__NOTIFY_BASE",
            "https://lastmile.example.edu.cn".into(),
        ),
        // An RSA merchant key, as WeChat Pay issues: it also signs v3.
        (
            "LASTMILE__WECHAT__CERT_PATH",
            fixture("v3/merchant_cert.pem"),
        ),
        ("LASTMILE__WECHAT__KEY_PATH", fixture("v3/merchant_key.pem")),
        ("LASTMILE__WECHAT__API_V3_KEY", LIVE_V3_KEY.into()),
        (
            "LASTMILE__WECHAT__CERT_SERIAL",
            "2AF9A6DE5940AC8B3C921540A57A1D2C92098A76".into(),
        ),
        (
            "LASTMILE__WECHAT__PAY_PUBLIC_KEY_PATH",
            fixture("v3/wechatpay_public.pem"),
        ),
        (
            "LASTMILE__WECHAT__PAY_PUBLIC_KEY_ID",
            "PUB_KEY_ID_0123".into(),
        ),
    ]
}

fn with(
    mut env: Vec<(&'static str, String)>,
    key: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    env.retain(|(k, _)| *k != key);
    env.push((key, value.to_owned()));
    env
}

fn without(mut env: Env, key: &'static str) -> Env {
    env.retain(|(k, _)| *k != key);
    env
}

/// Everything in `text` that would betray one of `secrets`.
fn leaks<'a>(text: &str, secrets: &[&'a str]) -> Vec<&'a str> {
    secrets
        .iter()
        .copied()
        .filter(|s| !s.is_empty() && text.contains(s))
        .collect()
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

#[test]
fn live_mode_refuses_sandbox_credentials_and_missing_pieces() {
    let dir = tempfile::tempdir().expect("tmp");
    let unreadable = dir.path().join("no-such-key.pem");
    let cases: Vec<(Env, &str, &str)> = vec![
        (
            with(live_env(), "LASTMILE__WECHAT__APPID", "wx0000000000sandbox"),
            "wechat.appid",
            "sandbox appid",
        ),
        (
            with(live_env(), "LASTMILE__WECHAT__SECRET", "sandbox-app-secret"),
            "wechat.secret",
            "sandbox secret",
        ),
        (
            with(
                live_env(),
                "LASTMILE__WECHAT__API_KEY",
                "sandboxsandboxsandboxsandbox0000",
            ),
            "wechat.api_key",
            "sandbox api key",
        ),
        (
            with(live_env(), "LASTMILE__WECHAT__API_KEY", "short"),
            "wechat.api_key",
            "api key of the wrong length",
        ),
        (
            with(live_env(), "LASTMILE__WECHAT__NOTIFY_BASE", ""),
            "wechat.notify_base",
            "empty notify_base",
        ),
        (
            without(live_env(), "LASTMILE__WECHAT__CERT_PATH"),
            "wechat.cert_path",
            "no certificate",
        ),
        (
            with(
                live_env(),
                "LASTMILE__WECHAT__KEY_PATH",
                &unreadable.display().to_string(),
            ),
            "wechat.key_path",
            "unreadable key",
        ),
        (
            with(
                live_env(),
                "LASTMILE__WECHAT__API_V3_KEY",
                "sandboxv3sandboxv3sandboxv3sandb",
            ),
            "wechat.api_v3_key",
            "sandbox API v3 key",
        ),
        (
            without(live_env(), "LASTMILE__WECHAT__CERT_SERIAL"),
            "wechat.cert_serial",
            "no certificate serial",
        ),
        (
            without(live_env(), "LASTMILE__WECHAT__PAY_PUBLIC_KEY_ID"),
            "wechat.pay_public_key_id",
            "no WeChat Pay public key id",
        ),
        (
            with(
                live_env(),
                "LASTMILE__WECHAT__PAY_PUBLIC_KEY_PATH",
                &fixture("apiclient_cert.pem"),
            ),
            "wechat.pay_public_key_path",
            "a WeChat Pay public key that is not one",
        ),
        (
            with(
                live_env(),
                "LASTMILE__WECHAT__KEY_PATH",
                &fixture("apiclient_key.pem"),
            ),
            "wechat.key_path",
            "a merchant key that cannot sign v3",
        ),
    ];
    for (env, key, why) in cases {
        let stderr = crate::helpers::refuses_to_start(&dir.path().join("data"), &[], &env, why);
        assert!(
            stderr.contains(key),
            "{why}: the line names {key}: {stderr}"
        );
        assert!(
            leaks(&stderr, &[LIVE_SECRET, LIVE_KEY, LIVE_V3_KEY]).is_empty(),
            "{why}: {stderr}"
        );
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[actix_web::test]
async fn unreachable_wechat_in_live_mode_logs_no_secret() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("service.log");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut env = live_env();
    env.push(("LASTMILE__WECHAT__API_BASE", closed.clone()));
    env.push(("LASTMILE__WECHAT__PAY_BASE", closed));
    env.push(("RUST_LOG", "trace".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = BinaryApp::start_logged(&dir.path().join("data"), &env, Some(&log)).await;
    let client = reqwest::Client::new();

    let res = client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"code": "any-code"}))
        .send()
        .await
        .expect("login request");

    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(app);
    let text = read_log(&log);
    assert!(
        text.contains("503") || text.contains("unavailable") || text.contains("unreachable"),
        "the failure is logged at all: {text}"
    );
    let key_md5 = md5_hex(LIVE_KEY);
    let found = leaks(
        &text,
        &[LIVE_SECRET, LIVE_KEY, LIVE_V3_KEY, &key_md5, "secret="],
    );
    assert!(found.is_empty(), "log leaks {found:?}:\n{text}");
}

#[actix_web::test]
async fn a_whole_sandbox_flow_at_trace_level_logs_no_secret() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("service.log");
    let app = BinaryApp::start_logged(
        &dir.path().join("data"),
        &[("RUST_LOG", "trace")],
        Some(&log),
    )
    .await;
    let client = reqwest::Client::new();
    let (token, _) = app.sandbox_paid_order(&client, "secret-flow").await;

    drop(app);
    let text = read_log(&log);
    assert!(!text.is_empty(), "trace logging wrote something");
    let api_key = lastmile_actors::wechat::SANDBOX_API_KEY;
    let key_md5 = md5_hex(api_key);
    let found = leaks(
        &text,
        &[
            &token,
            lastmile_actors::wechat::SANDBOX_SECRET,
            api_key,
            &key_md5,
        ],
    );
    assert!(found.is_empty(), "log leaks {found:?}");
}

#[actix_web::test]
async fn the_request_id_is_in_the_log_lines_of_its_request() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("service.log");
    let app = BinaryApp::start_logged(&dir.path().join("data"), &[], Some(&log)).await;
    let client = reqwest::Client::new();
    // A forged notify is refused with a warning, inside its request.
    let res = client
        .post(app.url("/api/v1/wechat/pay/notify"))
        .header("X-Request-Id", "trace-me-4711")
        .body("<xml><return_code>SUCCESS</return_code></xml>")
        .send()
        .await
        .expect("notify");
    assert_eq!(
        res.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-4711")
    );
    drop(app);
    let text = read_log(&log);
    assert!(
        text.lines()
            .any(|l| l.contains("trace-me-4711") && l.contains("notify refused")),
        "{text}"
    );
}

#[actix_web::test]
async fn text_from_unauthenticated_callbacks_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("lastmile.log");
    let app = BinaryApp::start_logged(&dir.path().join("data"), &[], Some(&log)).await;
    let client = reqwest::Client::new();
    let forged = "2026-12-03T11:40:00Z INFO request{id=admin}: operator refunded order XYZ";
    let bodies = [
        (
            "/api/v1/wechat/pay/notify",
            format!("<xml><sign_type>MD5\n{forged}</sign_type><sign>AB</sign></xml>"),
        ),
        (
            "/api/v1/wechat/refund/notify",
            format!("<xml><return_code>FAIL</return_code><return_msg>busy\r\n{forged}</return_msg></xml>"),
        ),
    ];
    for (path, body) in bodies {
        let answer = client
            .post(app.url(path))
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
            .await
            .expect("notify");
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
    }
    drop(app);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("notify refused"),
        "the refusal is logged:\n{text}"
    );
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-12-03T11:40:00Z"),
            "a forged line reached the log:\n{text}"
        );
        assert!(!line.contains('\r'), "a raw carriage return:\n{text}");
    }
    assert!(
        !text.contains("busy"),
        "an anonymous FAIL's text is not logged:\n{text}"
    );
}
