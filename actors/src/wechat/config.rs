//! The WeChat settings (`[wechat]`): app and merchant credentials, never
//! printed, with public sandbox defaults live mode refuses.

use super::*;

/// A secret value (app secret, pay key): never printed, never logged.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for signing and API calls only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A transport failure without its URL: WeChat's query strings carry the
/// app secret and access tokens, and reqwest prints the URL in its errors.
pub(crate) fn unreachable(e: reqwest::Error) -> WeChatError {
    WeChatError::Unreachable(Some(e.without_url()))
}

/// The sandbox appid shipped in `config/default.toml` (public: never live).
pub const SANDBOX_APPID: &str = "wx0000000000sandbox";
/// The sandbox app secret shipped in `config/default.toml`.
pub const SANDBOX_SECRET: &str = "sandbox-app-secret";
/// The sandbox WeChat Pay key shipped in `config/default.toml`.
pub const SANDBOX_API_KEY: &str = "sandboxsandboxsandboxsandbox0000";

/// Which WeChat the service talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The in-process simulator (default; works offline).
    Sandbox,
    /// The real APIs at `api_base` / `pay_base`.
    Live,
}

/// Which algorithm signs WeChat Pay v2 messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SignType {
    /// MD5 (WeChat Pay's default).
    #[serde(rename = "MD5")]
    Md5,
    /// HMAC-SHA256.
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

/// The `[wechat]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct WeChatConfig {
    /// sandbox or live.
    pub mode: Mode,
    /// The mini-program's appid.
    pub appid: String,
    /// The mini-program's app secret.
    pub secret: Secret,
    /// WeChat Pay merchant id.
    pub mch_id: String,
    /// WeChat Pay v2 API key (32 characters).
    pub api_key: Secret,
    /// Base URL of the mini-program APIs.
    pub api_base: String,
    /// Base URL of WeChat Pay.
    pub pay_base: String,
    /// The service's own URL as WeChat reaches it (for notify URLs).
    pub notify_base: String,
    /// Signature algorithm for WeChat Pay.
    pub sign_type: SignType,
    /// Use `cgi-bin/stable_token` (true) or `cgi-bin/token` for access tokens.
    #[serde(default = "default_true")]
    pub stable_token: bool,
    /// Merchant certificate (PEM), needed for refunds in live mode.
    #[serde(default)]
    pub cert_path: Option<String>,
    /// Merchant private key (PEM), needed for refunds in live mode.
    #[serde(default)]
    pub key_path: Option<String>,
    /// The WeChat Pay API v3 key (32 bytes): decrypts v3 callbacks.
    #[serde(default = "sandbox_api_v3_key")]
    pub api_v3_key: Secret,
    /// The merchant certificate's serial number (v3 request signatures).
    #[serde(default)]
    pub cert_serial: Option<String>,
    /// WeChat Pay's public key (PEM): verifies v3 answers and callbacks.
    #[serde(default)]
    pub pay_public_key_path: Option<String>,
    /// The id of that key (`PUB_KEY_ID_…`, sent as `Wechatpay-Serial`).
    #[serde(default)]
    pub pay_public_key_id: Option<String>,
    /// The 商家转账 scene the merchant was granted (1005: 佣金报酬).
    #[serde(default = "default_transfer_scene")]
    pub transfer_scene_id: String,
    /// Report each delivered order to WeChat's shipping-info service
    /// (发货信息管理, `upload_shipping_info`).
    #[serde(default)]
    pub shipping_info: bool,
}

fn sandbox_api_v3_key() -> Secret {
    Secret::new(sandbox_transfer::SANDBOX_API_V3_KEY)
}

fn default_transfer_scene() -> String {
    "1005".into()
}

fn default_true() -> bool {
    true
}

impl WeChatConfig {
    /// Why live mode must not start with these settings (one line naming
    /// the key), or Ok. The sandbox credentials are public, so a live
    /// service on them would accept anyone's signed notify.
    pub fn check_live(&self) -> Result<(), String> {
        if self.appid.is_empty() || self.appid == SANDBOX_APPID {
            return Err(
                "wechat.appid still has its sandbox value; live mode needs the real appid".into(),
            );
        }
        if self.secret.expose().is_empty() || self.secret.expose() == SANDBOX_SECRET {
            return Err(
                "wechat.secret still has its sandbox value; live mode needs the real app secret"
                    .into(),
            );
        }
        if self.api_key.expose() == SANDBOX_API_KEY {
            return Err("wechat.api_key still has its sandbox value; live mode needs the merchant's API key".into());
        }
        if self.api_key.expose().chars().count() != 32 {
            return Err("wechat.api_key must be 32 characters".into());
        }
        if self.notify_base.trim().is_empty() {
            return Err("wechat.notify_base is empty; live mode needs the public HTTPS URL WeChat Pay reaches".into());
        }
        for (key, path) in [
            ("wechat.cert_path", &self.cert_path),
            ("wechat.key_path", &self.key_path),
        ] {
            let Some(path) = path.as_deref().filter(|p| !p.is_empty()) else {
                return Err(format!(
                    "{key} is unset; live mode needs the merchant certificate and key (PEM)"
                ));
            };
            if let Err(e) = std::fs::read(path) {
                return Err(format!("{key} = {path} cannot be read: {e}"));
            }
        }
        Ok(())
    }

    /// With transfers in live mode: the v3 keys are there and usable.
    pub fn check_live_transfers(&self) -> Result<(), String> {
        let v3 = self.api_v3_key.expose();
        if v3 == sandbox_transfer::SANDBOX_API_V3_KEY || v3.len() != 32 {
            return Err("wechat.api_v3_key is unset or its sandbox value; transfers (money.payout = \"transfer\") need the merchant's 32-byte API v3 key".into());
        }
        self.live_transfer_api().map(|_| ())
    }

    /// The live 商家转账 API, from the v3 keys.
    pub fn live_transfer_api(&self) -> Result<transfer::TransferApi, String> {
        let read = |key: &str, path: &Option<String>| -> Result<String, String> {
            let path = path
                .as_deref()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| format!("{key} is unset; transfers need it"))?;
            std::fs::read_to_string(path).map_err(|e| format!("{key} = {path} cannot be read: {e}"))
        };
        let serial = self.cert_serial.clone().filter(|s| !s.is_empty()).ok_or(
            "wechat.cert_serial is unset; transfers sign with the merchant certificate's serial",
        )?;
        let key_id = self
            .pay_public_key_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(
                "wechat.pay_public_key_id is unset; transfers need the WeChat Pay public key's id",
            )?;
        let signer = v3::V3Signer::from_pem(
            &self.mch_id,
            &serial,
            &read("wechat.key_path", &self.key_path)?,
        )
        .map_err(|e| format!("wechat.key_path: {e}"))?;
        let verifier = v3::V3Verifier::from_pem(
            &key_id,
            &read("wechat.pay_public_key_path", &self.pay_public_key_path)?,
        )
        .map_err(|e| format!("wechat.pay_public_key_path: {e}"))?;
        Ok(transfer::TransferApi::new(
            std::sync::Arc::new(transfer::HttpTransport::new(&self.pay_base)),
            signer,
            verifier,
            self.api_v3_key.clone(),
        ))
    }

    /// The merchant's signer.
    pub fn pay_signer(&self) -> PaySigner {
        PaySigner {
            appid: self.appid.clone(),
            mch_id: self.mch_id.clone(),
            api_key: self.api_key.clone(),
            sign_type: self.sign_type,
        }
    }
}
