//! WeChat Pay's reference SDK (PyPI `wechatpayv3`) as an independent judge
//! of our API v3 bytes: it must take the sandbox's transfer callback as
//! WeChat Pay's (signature by the platform key, AES-256-GCM resource), and
//! sign a request exactly as we do.

use std::io::Write;
use std::process::{Command, Stdio};

use lastmile_actors::wechat::sandbox_transfer::{
    SANDBOX_API_V3_KEY, SANDBOX_CERT_SERIAL, SANDBOX_PAY_PUBLIC_KEY_ID,
};
use lastmile_actors::wechat::transfer::{TransferBill, TRANSFER_PATH};
use lastmile_actors::wechat::v3::V3Signer;
use lastmile_actors::wechat::SandboxWeChat;
use serde_json::{json, Value};

use crate::helpers::{ensure_python_module, test_settings};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[actix_web::test]
async fn the_reference_sdk_takes_our_callbacks_and_signs_requests_as_we_do() {
    ensure_python_module("wechatpayv3", "wechatpayv3");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = test_settings(dir.path());
    let sandbox = SandboxWeChat::new(&settings.wechat);
    let bill = TransferBill {
        appid: settings.wechat.appid.clone(),
        out_bill_no: "W0000000000000000000000000JUDGE1".into(),
        transfer_scene_id: "1005".into(),
        openid: "oJUDGECOURIER".into(),
        transfer_amount: 270,
        transfer_remark: "校园跑腿配送收入提现".into(),
        notify_url: "http://127.0.0.1:9/api/v1/wechat/transfer/notify".into(),
        transfer_scene_report_infos: Vec::new(),
    };
    let taken = sandbox
        .transfer_api()
        .transfer(&bill)
        .await
        .expect("transfer");
    assert!(sandbox
        .transfer_simulator()
        .confirm_quietly(&bill.out_bill_no));
    let (headers, body) = sandbox
        .transfer_simulator()
        .callback_for(&bill.out_bill_no)
        .expect("callback");

    let request_body = serde_json::to_string(&bill).expect("json");
    let nonce = "593BEC0C930BF1AFEB40B4A08C8FB242";
    let case = json!({
        "mchid": settings.wechat.mch_id,
        "serial": SANDBOX_CERT_SERIAL,
        "appid": settings.wechat.appid,
        "api_v3_key": SANDBOX_API_V3_KEY,
        "merchant_key": fixture("v3/merchant_key.pem"),
        "pay_public_key": fixture("v3/wechatpay_public.pem"),
        "pay_public_key_id": SANDBOX_PAY_PUBLIC_KEY_ID,
        "callback_headers": {
            "Wechatpay-Timestamp": headers.timestamp,
            "Wechatpay-Nonce": headers.nonce,
            "Wechatpay-Signature": headers.signature,
            "Wechatpay-Serial": headers.serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        },
        "callback_body": body,
        "request": {"method": "POST", "path": TRANSFER_PATH, "body": request_body, "nonce": nonce},
    });
    let mut judge = Command::new("python3")
        .arg(fixture("wechatpayv3_judge.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    judge
        .stdin
        .take()
        .expect("stdin")
        .write_all(case.to_string().as_bytes())
        .expect("case written");
    let out = judge.wait_with_output().expect("judge ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("judge JSON");

    let resource = &verdict["callback"]["resource"];
    assert_eq!(
        verdict["callback"]["event_type"], "MCHTRANSFER.BILL.FINISHED",
        "{verdict}"
    );
    assert_eq!(
        resource["out_bill_no"],
        bill.out_bill_no.as_str(),
        "{verdict}"
    );
    assert_eq!(
        resource["transfer_bill_no"],
        taken.transfer_bill_no.as_str()
    );
    assert_eq!(resource["state"], "SUCCESS");

    // The SDK signs at its own clock: sign the same request at its
    // timestamp and compare the whole header.
    let theirs = verdict["authorization"].as_str().expect("authorization");
    let timestamp: i64 = theirs
        .split("timestamp=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|t| t.parse().ok())
        .expect("timestamp");
    let key = std::fs::read_to_string(fixture("v3/merchant_key.pem")).expect("key");
    let ours = V3Signer::from_pem(&settings.wechat.mch_id, SANDBOX_CERT_SERIAL, &key)
        .expect("signer")
        .authorization("POST", TRANSFER_PATH, &request_body, timestamp, nonce);
    assert_eq!(ours, theirs);
}
