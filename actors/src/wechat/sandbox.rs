//! The in-process WeChat simulator used by default and by tests.
//!
//! It answers like WeChat does, deterministically: the same login code
//! always gives the same openid, different codes give different openids,
//! and a code starting with `invalid` is rejected with errcode 40029.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use base64::Engine;
use sha2::{Digest, Sha256};

use std::sync::Arc;

use super::pay_api::PayApi;
use super::sandbox_pay::PaySimulator;
use super::sandbox_transfer::TransferSimulator;
use super::transfer::TransferApi;
use super::v3::V3Signer;
use super::{Code2SessionReply, WeChat, WeChatConfig, WeChatError, WxSession};

/// Prefix of login codes the sandbox rejects, so clients can test that path.
pub const REJECTED_CODE_PREFIX: &str = "invalid";

/// The simulator; counts its calls so tests can assert on them.
pub struct SandboxWeChat {
    appid: String,
    pay: PayApi<Arc<PaySimulator>>,
    transfers: Arc<TransferApi>,
    transfer_sim: Arc<TransferSimulator>,
    down: AtomicBool,
    code2session_calls: AtomicU64,
    token_calls: AtomicU64,
    token_lifetime: AtomicU64,
    first_valid_token: AtomicU64,
    wxacode_calls: AtomicU64,
    failing_sends: AtomicU64,
    content_checks: AtomicU64,
    shipping_reports: std::sync::Mutex<Vec<super::ShippingReport>>,
    shipping_refusals: std::sync::Mutex<std::collections::VecDeque<i64>>,
    sent: std::sync::Mutex<Vec<SentMessage>>,
    attempts: std::sync::Mutex<Vec<(String, bool)>>,
}

/// A message the sandbox delivered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SentMessage {
    /// `subscribe` or `template`.
    pub via: &'static str,
    /// The message.
    #[serde(flatten)]
    pub message: super::OutgoingMessage,
    /// The form_id used (template messages).
    pub form_id: Option<String>,
}

/// The sandbox's content check refuses a text containing this word.
pub const SANDBOX_RISKY_WORD: &str = "违禁";
/// ...and asks operators to look at one containing this one.
pub const SANDBOX_REVIEW_WORD: &str = "可疑";

/// Seconds a sandbox access_token lives unless a test changes it.
const SANDBOX_TOKEN_LIFETIME: u64 = 7200;

impl SandboxWeChat {
    /// A simulator for the configured app.
    pub fn new(config: &WeChatConfig) -> Self {
        let simulator = Arc::new(PaySimulator::new(config.pay_signer()));
        let (transfers, transfer_sim) = sandbox_transfers(config);
        Self {
            appid: config.appid.clone(),
            pay: PayApi::new(simulator, config.pay_signer()),
            transfers,
            transfer_sim,
            down: AtomicBool::new(false),
            code2session_calls: AtomicU64::new(0),
            token_calls: AtomicU64::new(0),
            token_lifetime: AtomicU64::new(SANDBOX_TOKEN_LIFETIME),
            first_valid_token: AtomicU64::new(0),
            wxacode_calls: AtomicU64::new(0),
            failing_sends: AtomicU64::new(0),
            content_checks: AtomicU64::new(0),
            shipping_reports: std::sync::Mutex::new(Vec::new()),
            shipping_refusals: std::sync::Mutex::new(std::collections::VecDeque::new()),
            sent: std::sync::Mutex::new(Vec::new()),
            attempts: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The 商家转账 API, over the simulator.
    pub fn transfer_api(&self) -> &Arc<TransferApi> {
        &self.transfers
    }

    /// The simulated 商家转账 backend (the courier's confirmation).
    pub fn transfer_simulator(&self) -> &Arc<TransferSimulator> {
        &self.transfer_sim
    }

    /// The simulated WeChat Pay backend (to pay orders, count calls).
    pub fn pay_simulator(&self) -> &Arc<PaySimulator> {
        self.pay.transport()
    }

    /// Makes every call fail as unreachable (or work again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many jscode2session calls were made.
    pub fn code2session_calls(&self) -> u64 {
        self.code2session_calls.load(Ordering::SeqCst)
    }

    /// How many access_token fetches were made (including failed ones).
    pub fn token_calls(&self) -> u64 {
        self.token_calls.load(Ordering::SeqCst)
    }

    /// How long the next tokens live, in seconds.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.token_lifetime.store(seconds, Ordering::SeqCst);
    }

    /// Makes every token issued so far invalid (as another process's
    /// refresh would): calls with them answer errcode 40001.
    pub fn revoke_tokens(&self) {
        let issued = self.token_calls.load(Ordering::SeqCst);
        self.first_valid_token.store(issued + 1, Ordering::SeqCst);
    }

    /// Makes the next `n` message sends fail with errcode -1 (system busy).
    pub fn fail_next_sends(&self, n: u64) {
        self.failing_sends.store(n, Ordering::SeqCst);
    }

    /// Every message delivered so far.
    pub fn sent_messages(&self) -> Vec<SentMessage> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Every send attempt so far, in order: (recipient openid, accepted).
    pub fn send_attempts(&self) -> Vec<(String, bool)> {
        self.attempts.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn deliver(
        &self,
        via: &'static str,
        message: &super::OutgoingMessage,
        form_id: Option<&str>,
    ) -> Result<(), WeChatError> {
        let result = self.accept(via, message, form_id);
        if let Ok(mut attempts) = self.attempts.lock() {
            attempts.push((message.touser.clone(), result.is_ok()));
        }
        result
    }

    fn accept(
        &self,
        via: &'static str,
        message: &super::OutgoingMessage,
        form_id: Option<&str>,
    ) -> Result<(), WeChatError> {
        if self
            .failing_sends
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(WeChatError::Api {
                errcode: -1,
                errmsg: "system error".into(),
            });
        }
        // Like WeChat for a used or forged form_id; the prefix matches the
        // login codes the sandbox rejects.
        if form_id.is_some_and(|f| f.starts_with(REJECTED_CODE_PREFIX)) {
            return Err(WeChatError::Api {
                errcode: 41028,
                errmsg: "invalid form id".into(),
            });
        }
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(SentMessage {
                via,
                message: message.clone(),
                form_id: form_id.map(str::to_owned),
            });
        }
        Ok(())
    }

    /// The shipping reports WeChat took.
    pub fn shipping_reports(&self) -> Vec<super::ShippingReport> {
        self.shipping_reports
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Answers the next shipping reports with these errcodes, in order.
    pub fn refuse_shipping(&self, errcodes: &[i64]) {
        if let Ok(mut queue) = self.shipping_refusals.lock() {
            queue.extend(errcodes);
        }
    }

    /// How many content checks were asked for.
    pub fn content_checks(&self) -> u64 {
        self.content_checks.load(Ordering::SeqCst)
    }

    /// How many wxacode calls were made.
    pub fn wxacode_calls(&self) -> u64 {
        self.wxacode_calls.load(Ordering::SeqCst)
    }

    fn check_token(&self, token: &str) -> Result<(), WeChatError> {
        let n = token
            .strip_prefix("SANDBOX_ACCESS_TOKEN_")
            .and_then(|n| n.parse::<u64>().ok());
        match n {
            Some(n) if n >= self.first_valid_token.load(Ordering::SeqCst) => Ok(()),
            _ => Err(WeChatError::Api {
                errcode: 40001,
                errmsg: "invalid credential, access_token is invalid or not latest".into(),
            }),
        }
    }

    fn check_up(&self) -> Result<(), WeChatError> {
        if self.down.load(Ordering::SeqCst) {
            Err(WeChatError::Unreachable(None))
        } else {
            Ok(())
        }
    }

    fn digest(&self, what: &str, input: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.appid.as_bytes());
        h.update([0]);
        h.update(what.as_bytes());
        h.update([0]);
        h.update(input.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
    }
}

#[async_trait]
impl WeChat for SandboxWeChat {
    async fn code2session(&self, code: &str) -> Result<WxSession, WeChatError> {
        self.code2session_calls.fetch_add(1, Ordering::SeqCst);
        self.check_up()?;
        let reply = if code.starts_with(REJECTED_CODE_PREFIX) {
            Code2SessionReply {
                openid: None,
                session_key: None,
                unionid: None,
                errcode: 40029,
                errmsg: "invalid code".into(),
            }
        } else {
            // Real openids are 28 characters starting with 'o'.
            let openid = format!("o{}", &self.digest("openid", code)[..27]);
            Code2SessionReply {
                openid: Some(openid),
                session_key: Some(self.digest("session_key", code)[..24].to_owned()),
                unionid: None,
                errcode: 0,
                errmsg: String::new(),
            }
        };
        reply.into_session()
    }

    fn pay(&self) -> &dyn super::WeChatPay {
        &self.pay
    }

    async fn send_subscribe(
        &self,
        access_token: &str,
        message: &super::OutgoingMessage,
    ) -> Result<(), WeChatError> {
        self.check_up()?;
        self.check_token(access_token)?;
        self.deliver("subscribe", message, None)
    }

    async fn send_template(
        &self,
        access_token: &str,
        message: &super::OutgoingMessage,
        form_id: &str,
    ) -> Result<(), WeChatError> {
        self.check_up()?;
        self.check_token(access_token)?;
        self.deliver("template", message, Some(form_id))
    }

    async fn msg_sec_check(
        &self,
        access_token: &str,
        _openid: &str,
        _scene: super::ContentScene,
        content: &str,
    ) -> Result<super::ContentVerdict, WeChatError> {
        self.content_checks.fetch_add(1, Ordering::SeqCst);
        self.check_up()?;
        self.check_token(access_token)?;
        Ok(if content.contains(SANDBOX_RISKY_WORD) {
            super::ContentVerdict::Risky
        } else if content.contains(SANDBOX_REVIEW_WORD) {
            super::ContentVerdict::Review
        } else {
            super::ContentVerdict::Pass
        })
    }

    async fn upload_shipping_info(
        &self,
        access_token: &str,
        report: &super::ShippingReport,
    ) -> Result<(), WeChatError> {
        self.check_up()?;
        self.check_token(access_token)?;
        let refusal = self
            .shipping_refusals
            .lock()
            .ok()
            .and_then(|mut queue| queue.pop_front());
        if let Some(errcode) = refusal {
            return Err(WeChatError::Api {
                errcode,
                errmsg: "sandbox refusal".into(),
            });
        }
        if let Ok(mut reports) = self.shipping_reports.lock() {
            reports.push(report.clone());
        }
        Ok(())
    }

    async fn wxacode_unlimited(
        &self,
        access_token: &str,
        scene: &str,
        page: &str,
    ) -> Result<Vec<u8>, WeChatError> {
        self.wxacode_calls.fetch_add(1, Ordering::SeqCst);
        self.check_up()?;
        self.check_token(access_token)?;
        qr_png(&format!(
            "{}?scene={}",
            if page.is_empty() {
                "pages/index/index"
            } else {
                page
            },
            scene
        ))
    }

    async fn fetch_access_token(&self, _stable: bool) -> Result<super::AccessToken, WeChatError> {
        let n = self.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.check_up()?;
        Ok(super::AccessToken {
            value: format!("SANDBOX_ACCESS_TOKEN_{n}"),
            expires_in: self.token_lifetime.load(Ordering::SeqCst),
        })
    }
}

/// Pixels per QR module in sandbox codes.
const QR_SCALE: usize = 8;
/// Quiet zone around a QR code, in modules.
const QR_BORDER: usize = 4;

/// A real, scannable PNG of a QR code for `text` (the sandbox's wxacode).
fn qr_png(text: &str) -> Result<Vec<u8>, WeChatError> {
    let code =
        qrcode::QrCode::new(text.as_bytes()).map_err(|e| WeChatError::Protocol(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QR_BORDER) * QR_SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QR_BORDER, i / modules + QR_BORDER);
        for y in my * QR_SCALE..(my + 1) * QR_SCALE {
            pixels[y * side + mx * QR_SCALE..y * side + (mx + 1) * QR_SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let encoded = encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&pixels));
    encoded.map_err(|e| WeChatError::Protocol(e.to_string()))?;
    Ok(out)
}

/// The sandbox's transfer API and its simulator, on the embedded sandbox
/// keys (public: they sign nothing real).
fn sandbox_transfers(config: &WeChatConfig) -> (Arc<TransferApi>, Arc<TransferSimulator>) {
    use super::sandbox_transfer::{SANDBOX_CERT_SERIAL, SANDBOX_MERCHANT_KEY};
    let signer = V3Signer::from_pem(&config.mch_id, SANDBOX_CERT_SERIAL, SANDBOX_MERCHANT_KEY)
        .expect("the embedded sandbox merchant key parses");
    let simulator = Arc::new(
        TransferSimulator::new(
            signer.verifier(SANDBOX_CERT_SERIAL),
            config.api_v3_key.clone(),
        )
        .expect("the embedded sandbox platform key parses"),
    );
    let verifier = TransferSimulator::verifier().expect("the embedded sandbox public key parses");
    let api = TransferApi::new(
        simulator.clone(),
        signer,
        verifier,
        config.api_v3_key.clone(),
    );
    (Arc::new(api), simulator)
}
