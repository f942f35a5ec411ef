//! WeChat Pay API v3's wire security, pure: request signatures
//! (`WECHATPAY2-SHA256-RSA2048`, RSA-SHA256 PKCS#1 v1.5 with the merchant
//! key), verification of answers and callbacks with the WeChat Pay public
//! key (`Wechatpay-Timestamp/-Nonce/-Signature/-Serial`, stale timestamps
//! refused), and callback resources (AEAD_AES_256_GCM with the API v3
//! key). RustCrypto's `rsa` and `aes-gcm`: pure Rust, no C toolchain, no
//! build-time downloads. Note: `rsa` 0.9's private-key operations are not
//! constant time (RUSTSEC-2023-0071); here they only sign our own
//! outgoing transfer requests, a few per withdrawal.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The scheme name in `Authorization`.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// How far a signed timestamp may be from our clock (WeChat Pay's advice:
/// five minutes), so a captured callback cannot be replayed later.
pub const MAX_SKEW_SECONDS: i64 = 300;

/// What went wrong with v3 security.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V3Error {
    /// A key does not parse.
    #[error("{0} is not a valid RSA key (PKCS#8 / SPKI PEM)")]
    BadKey(&'static str),
    /// A signature header is missing or malformed.
    #[error("the {0} header is missing or malformed")]
    BadHeader(&'static str),
    /// Signed by another key than the one we hold.
    #[error("signed with an unknown key")]
    UnknownSerial,
    /// The timestamp is too far from now.
    #[error("the signature's timestamp is stale")]
    Stale,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// The API v3 key is not 32 bytes.
    #[error("the API v3 key must be 32 bytes")]
    BadApiV3Key,
    /// A resource does not decrypt (wrong key, tampered, bad fields).
    #[error("the callback resource does not decrypt")]
    Undecryptable,
}

/// The text a request signature covers.
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The text an answer's or callback's signature covers.
pub fn response_message(timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{timestamp}\n{nonce}\n{body}\n")
}

/// The merchant's signing key.
#[derive(Clone)]
pub struct V3Signer {
    mchid: String,
    serial: String,
    key: SigningKey<Sha256>,
}

impl std::fmt::Debug for V3Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3Signer")
            .field("mchid", &self.mchid)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl V3Signer {
    /// From the merchant's private key (PKCS#8 PEM, `apiclient_key.pem`)
    /// and its certificate's serial number.
    pub fn from_pem(mchid: &str, serial: &str, pem: &str) -> Result<Self, V3Error> {
        let key =
            RsaPrivateKey::from_pkcs8_pem(pem).map_err(|_| V3Error::BadKey("the merchant key"))?;
        Ok(Self {
            mchid: mchid.to_owned(),
            serial: serial.to_owned(),
            key: SigningKey::new(key),
        })
    }

    /// The base64 signature of `message`.
    pub fn sign(&self, message: &str) -> String {
        B64.encode(self.key.sign(message.as_bytes()).to_bytes())
    }

    /// The `Authorization` header of a request.
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> String {
        let signature = self.sign(&request_message(
            method,
            path_and_query,
            timestamp,
            nonce,
            body,
        ));
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{signature}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
            self.mchid, self.serial
        )
    }

    /// The serial (or public key id) this key signs as.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The public half (the sandbox checks requests with it).
    pub fn verifier(&self, serial: &str) -> V3Verifier {
        V3Verifier {
            key_id: serial.to_owned(),
            key: VerifyingKey::new(RsaPublicKey::from(self.key.as_ref())),
        }
    }
}

/// The signature headers of an answer or a callback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct V3Headers {
    /// `Wechatpay-Timestamp`.
    pub timestamp: String,
    /// `Wechatpay-Nonce`.
    pub nonce: String,
    /// `Wechatpay-Signature`.
    pub signature: String,
    /// `Wechatpay-Serial`: the public key's id.
    pub serial: String,
}

/// WeChat Pay's public key, to verify what it sends.
#[derive(Clone)]
pub struct V3Verifier {
    key_id: String,
    key: VerifyingKey<Sha256>,
}

impl std::fmt::Debug for V3Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3Verifier")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl V3Verifier {
    /// From WeChat Pay's public key (SPKI PEM) and its id (`PUB_KEY_ID_…`).
    pub fn from_pem(key_id: &str, pem: &str) -> Result<Self, V3Error> {
        let key = RsaPublicKey::from_public_key_pem(pem)
            .map_err(|_| V3Error::BadKey("the WeChat Pay public key"))?;
        Ok(Self {
            key_id: key_id.to_owned(),
            key: VerifyingKey::new(key),
        })
    }

    /// The key's id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Checks a base64 `signature` over `message` (a request's own text).
    pub fn verify_message(&self, message: &str, signature: &str) -> Result<(), V3Error> {
        let raw = B64
            .decode(signature.as_bytes())
            .map_err(|_| V3Error::BadHeader("signature"))?;
        let signature = Signature::try_from(raw.as_slice()).map_err(|_| V3Error::BadSignature)?;
        self.key
            .verify(message.as_bytes(), &signature)
            .map_err(|_| V3Error::BadSignature)
    }

    /// Checks that `body` came signed by this key within
    /// [`MAX_SKEW_SECONDS`] of `now_unix`.
    pub fn verify(&self, headers: &V3Headers, body: &str, now_unix: i64) -> Result<(), V3Error> {
        if headers.serial != self.key_id {
            return Err(V3Error::UnknownSerial);
        }
        let timestamp: i64 = headers
            .timestamp
            .parse()
            .map_err(|_| V3Error::BadHeader("Wechatpay-Timestamp"))?;
        if (now_unix - timestamp).abs() > MAX_SKEW_SECONDS {
            return Err(V3Error::Stale);
        }
        if headers.nonce.is_empty() {
            return Err(V3Error::BadHeader("Wechatpay-Nonce"));
        }
        let raw = B64
            .decode(headers.signature.as_bytes())
            .map_err(|_| V3Error::BadHeader("Wechatpay-Signature"))?;
        let signature = Signature::try_from(raw.as_slice()).map_err(|_| V3Error::BadSignature)?;
        self.key
            .verify(
                response_message(timestamp, &headers.nonce, body).as_bytes(),
                &signature,
            )
            .map_err(|_| V3Error::BadSignature)
    }
}

/// The encrypted part of a callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// Base64 of the ciphertext and its 16-byte tag.
    pub ciphertext: String,
    /// The associated data (may be empty).
    #[serde(default)]
    pub associated_data: String,
    /// What the plaintext is (`mch_payment` for transfers).
    #[serde(default)]
    pub original_type: String,
    /// The 12-character nonce.
    pub nonce: String,
}

/// A v3 callback's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The notification's id.
    pub id: String,
    /// When it was made.
    pub create_time: String,
    /// `encrypt-resource`.
    pub resource_type: String,
    /// What happened (`MCHTRANSFER.BILL.FINISHED`).
    pub event_type: String,
    /// A human summary.
    #[serde(default)]
    pub summary: String,
    /// The encrypted content.
    pub resource: Resource,
}

fn cipher(api_v3_key: &str) -> Result<Aes256Gcm, V3Error> {
    Aes256Gcm::new_from_slice(api_v3_key.as_bytes()).map_err(|_| V3Error::BadApiV3Key)
}

/// The plaintext of a callback resource.
pub fn decrypt_resource(api_v3_key: &str, resource: &Resource) -> Result<String, V3Error> {
    if resource.algorithm != "AEAD_AES_256_GCM" || resource.nonce.len() != 12 {
        return Err(V3Error::Undecryptable);
    }
    let ciphertext = B64
        .decode(resource.ciphertext.as_bytes())
        .map_err(|_| V3Error::Undecryptable)?;
    let plain = cipher(api_v3_key)?
        .decrypt(
            Nonce::from_slice(resource.nonce.as_bytes()),
            Payload {
                msg: &ciphertext,
                aad: resource.associated_data.as_bytes(),
            },
        )
        .map_err(|_| V3Error::Undecryptable)?;
    String::from_utf8(plain).map_err(|_| V3Error::Undecryptable)
}

/// A resource as WeChat Pay encrypts one (the sandbox's callbacks).
pub fn encrypt_resource(
    api_v3_key: &str,
    plaintext: &str,
    nonce: &str,
    associated_data: &str,
    original_type: &str,
) -> Result<Resource, V3Error> {
    if nonce.len() != 12 {
        return Err(V3Error::Undecryptable);
    }
    let sealed = cipher(api_v3_key)?
        .encrypt(
            Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: plaintext.as_bytes(),
                aad: associated_data.as_bytes(),
            },
        )
        .map_err(|_| V3Error::Undecryptable)?;
    Ok(Resource {
        algorithm: "AEAD_AES_256_GCM".into(),
        ciphertext: B64.encode(sealed),
        associated_data: associated_data.to_owned(),
        original_type: original_type.to_owned(),
        nonce: nonce.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT_KEY: &str = include_str!("../../../tests/fixtures/v3/merchant_key.pem");
    const WECHATPAY_KEY: &str = include_str!("../../../tests/fixtures/v3/wechatpay_key.pem");
    const WECHATPAY_PUBLIC: &str = include_str!("../../../tests/fixtures/v3/wechatpay_public.pem");

    #[test]
    fn a_request_signature_is_what_openssl_makes() {
        let signer = V3Signer::from_pem("1900000001", "2AF9A6DE", MERCHANT_KEY).expect("key");
        let message = request_message(
            "POST",
            "/v3/fund-app/mch-transfer/transfer-bills",
            1_764_750_000,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            r#"{"out_bill_no":"W1"}"#,
        );
        // `openssl dgst -sha256 -sign merchant_key.pem | base64` of the same text.
        assert_eq!(
            signer.sign(&message),
            "p8Fr7bNs03pRKVStjNkWALR7dcuG0M4LM6j8qQojn1eZxkLqlQVYRkJOV00sQ2o/6ETsKLqXB/TyleszZsBMelTI/yFqHP4zO02yeXlRZq2r+ghe9reKn27g7rDJn3g8C56dDCGoj7wAEm3Xwi55ysYwKIJugAgnBHIOiL+zCf3oYOtmiaP2iiqtQv+EXS6BkZ7/RbD1DOloXDP/eCS8ULPLpU94ovWGmakJXW62QApUE77FsLmrEvFafaPDlS1YpRc08V9wsvBKRMEKpPnc/lmLcLWKduWcUfpTUCV+222OvPRt10W3ANyV/FU/yWCorCPVSJbosu7K2bDhFsNBRw=="
        );
        let auth = signer.authorization(
            "POST",
            "/v3/fund-app/mch-transfer/transfer-bills",
            r#"{"out_bill_no":"W1"}"#,
            1_764_750_000,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
        );
        assert!(auth.starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900000001\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",signature=\"p8Fr7b"));
        assert!(auth.ends_with("timestamp=\"1764750000\",serial_no=\"2AF9A6DE\""));
    }

    #[test]
    fn callbacks_verify_only_fresh_and_untouched_from_the_known_key() {
        let wechat = V3Signer::from_pem("wx", "PUB_KEY_ID_1", WECHATPAY_KEY).expect("key");
        let verifier = V3Verifier::from_pem("PUB_KEY_ID_1", WECHATPAY_PUBLIC).expect("key");
        let body = r#"{"id":"n1"}"#;
        let now = 1_764_750_000;
        let headers = V3Headers {
            timestamp: now.to_string(),
            nonce: "abc".into(),
            signature: wechat.sign(&response_message(now, "abc", body)),
            serial: "PUB_KEY_ID_1".into(),
        };
        assert_eq!(verifier.verify(&headers, body, now + 10), Ok(()));
        assert_eq!(
            verifier.verify(&headers, r#"{"id":"n2"}"#, now),
            Err(V3Error::BadSignature)
        );
        assert_eq!(
            verifier.verify(&headers, body, now + 301),
            Err(V3Error::Stale)
        );
        let other = V3Headers {
            serial: "PUB_KEY_ID_2".into(),
            ..headers.clone()
        };
        assert_eq!(
            verifier.verify(&other, body, now),
            Err(V3Error::UnknownSerial)
        );
        let junk = V3Headers {
            signature: "!!".into(),
            ..headers
        };
        assert!(verifier.verify(&junk, body, now).is_err());
        assert!(V3Verifier::from_pem("x", "not a key").is_err());
        assert!(V3Signer::from_pem("m", "s", "not a key").is_err());
    }

    #[test]
    fn a_resource_decrypts_as_an_independent_aes_gcm_made_it() {
        // Python `cryptography`'s AESGCM over the same key, nonce and data.
        let resource = Resource {
            algorithm: "AEAD_AES_256_GCM".into(),
            ciphertext: "kdUw5hwycaoroLH4oNh4k3LtdmItVCJtNd0ZhYnUIUwG6RECKZWJ2WWK/QDZhnxD48zBmFCf"
                .into(),
            associated_data: "mch_payment".into(),
            original_type: "mch_payment".into(),
            nonce: "fdasflkja484".into(),
        };
        let key = "0123456789abcdefghijklmnopqrstuv";
        assert_eq!(
            decrypt_resource(key, &resource).as_deref(),
            Ok(r#"{"out_bill_no":"W1","state":"SUCCESS"}"#)
        );
        let again = encrypt_resource(
            key,
            r#"{"out_bill_no":"W1","state":"SUCCESS"}"#,
            "fdasflkja484",
            "mch_payment",
            "mch_payment",
        )
        .expect("encrypts");
        assert_eq!(again, resource);
        let tampered = Resource {
            associated_data: "other".into(),
            ..resource.clone()
        };
        assert_eq!(
            decrypt_resource(key, &tampered),
            Err(V3Error::Undecryptable)
        );
        assert_eq!(
            decrypt_resource("short", &resource),
            Err(V3Error::BadApiV3Key)
        );
    }
}
