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
use super::{Code2SessionReply, WeChat, WeChatConfig, WeChatError, WxSession};

/// Prefix of login codes the sandbox rejects, so clients can test that path.
pub const REJECTED_CODE_PREFIX: &str = "invalid";

/// The simulator; counts its calls so tests can assert on them.
pub struct SandboxWeChat {
    appid: String,
    pay: PayApi<Arc<PaySimulator>>,
    down: AtomicBool,
    code2session_calls: AtomicU64,
    token_calls: AtomicU64,
    token_lifetime: AtomicU64,
}

/// Seconds a sandbox access_token lives unless a test changes it.
const SANDBOX_TOKEN_LIFETIME: u64 = 7200;

impl SandboxWeChat {
    /// A simulator for the configured app.
    pub fn new(config: &WeChatConfig) -> Self {
        let simulator = Arc::new(PaySimulator::new(config.pay_signer()));
        Self {
            appid: config.appid.clone(),
            pay: PayApi::new(simulator, config.pay_signer()),
            down: AtomicBool::new(false),
            code2session_calls: AtomicU64::new(0),
            token_calls: AtomicU64::new(0),
            token_lifetime: AtomicU64::new(SANDBOX_TOKEN_LIFETIME),
        }
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

    async fn fetch_access_token(&self, _stable: bool) -> Result<super::AccessToken, WeChatError> {
        let n = self.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.check_up()?;
        Ok(super::AccessToken {
            value: format!("SANDBOX_ACCESS_TOKEN_{n}"),
            expires_in: self.token_lifetime.load(Ordering::SeqCst),
        })
    }
}
