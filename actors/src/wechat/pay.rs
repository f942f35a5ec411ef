//! WeChat Pay v2 wire format: signatures, the flat `<xml>` documents, and
//! the AES-256-ECB `req_info` of refund notifies.

use std::collections::BTreeMap;

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyInit};
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use quick_xml::events::Event;
use quick_xml::Reader;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::SignType;

/// A WeChat Pay message: field name → value, sorted (the signing order).
pub type Fields = BTreeMap<String, String>;

/// Largest XML document accepted from WeChat Pay or a caller.
pub const MAX_XML_BYTES: usize = 64 * 1024;

/// Why a WeChat Pay document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayWireError {
    /// Not a flat `<xml>` document, or over the size limit.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The `sign` field is missing.
    #[error("missing sign")]
    MissingSign,
    /// The `sign` does not match.
    #[error("bad sign")]
    BadSign,
    /// `sign_type` names an unknown algorithm.
    #[error("unknown sign_type {0}")]
    UnknownSignType(String),
    /// `req_info` does not decrypt.
    #[error("req_info does not decrypt")]
    BadCiphertext,
}

/// The string WeChat Pay signs: non-empty fields but `sign`, sorted by name,
/// `k=v` joined with `&`, then `&key=<api key>`.
fn string_to_sign(fields: &Fields, api_key: &str) -> String {
    let mut s = String::with_capacity(256);
    for (k, v) in fields {
        if k == "sign" || v.is_empty() {
            continue;
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('&');
    }
    s.push_str("key=");
    s.push_str(api_key);
    s
}

/// The uppercase-hex signature of `fields` with `api_key`.
pub fn sign(fields: &Fields, api_key: &str, sign_type: SignType) -> String {
    let text = string_to_sign(fields, api_key);
    match sign_type {
        SignType::Md5 => hex::encode_upper(Md5::digest(text.as_bytes())),
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(api_key.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(text.as_bytes());
            hex::encode_upper(mac.finalize().into_bytes())
        }
    }
}

/// The algorithm a received document says it was signed with (its own
/// `sign_type`), else the configured one.
pub fn sign_type_of(fields: &Fields, configured: SignType) -> Result<SignType, PayWireError> {
    match fields.get("sign_type").map(String::as_str) {
        None | Some("") => Ok(configured),
        Some("MD5") => Ok(SignType::Md5),
        Some("HMAC-SHA256") => Ok(SignType::HmacSha256),
        Some(other) => Err(PayWireError::UnknownSignType(other.to_owned())),
    }
}

/// Checks the mandatory `sign` over every received field, in constant time.
pub fn verify(fields: &Fields, api_key: &str, configured: SignType) -> Result<(), PayWireError> {
    let given = fields.get("sign").ok_or(PayWireError::MissingSign)?;
    let expected = sign(fields, api_key, sign_type_of(fields, configured)?);
    if given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(PayWireError::BadSign)
    }
}

/// Builds `<xml>` with every value in CDATA.
pub fn to_xml(fields: &Fields) -> String {
    let mut out = String::with_capacity(64 + fields.len() * 48);
    out.push_str("<xml>");
    for (k, v) in fields {
        out.push('<');
        out.push_str(k);
        out.push_str("><![CDATA[");
        // "]]>" cannot appear inside CDATA: close and reopen around it.
        out.push_str(&v.replace("]]>", "]]]]><![CDATA[>"));
        out.push_str("]]></");
        out.push_str(k);
        out.push('>');
    }
    out.push_str("</xml>");
    out
}

/// Parses a flat `<xml>` document (text or CDATA values; unknown fields kept).
pub fn from_xml(body: &[u8]) -> Result<Fields, PayWireError> {
    let bad = |m: &str| PayWireError::Malformed(m.to_owned());
    if body.len() > MAX_XML_BYTES {
        return Err(bad("document too large"));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut fields = Fields::new();
    let mut depth = 0usize;
    let mut current: Option<String> = None;
    let mut value = String::new();
    let mut saw_root = false;
    loop {
        match reader
            .read_event()
            .map_err(|e| PayWireError::Malformed(e.to_string()))?
        {
            Event::Start(e) => {
                depth += 1;
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| bad("bad element name"))?
                    .to_owned();
                match depth {
                    1 if name == "xml" => saw_root = true,
                    1 => return Err(bad("root element must be <xml>")),
                    2 => {
                        current = Some(name);
                        value.clear();
                    }
                    _ => return Err(bad("nested elements are not allowed")),
                }
            }
            Event::Empty(e) => {
                if depth != 1 {
                    return Err(bad("unexpected empty element"));
                }
                let qname = e.name();
                let name =
                    std::str::from_utf8(qname.as_ref()).map_err(|_| bad("bad element name"))?;
                fields.insert(name.to_owned(), String::new());
            }
            Event::Text(t) if depth == 2 => {
                value.push_str(
                    &t.unescape()
                        .map_err(|e| PayWireError::Malformed(e.to_string()))?,
                );
            }
            Event::CData(c) if depth == 2 => {
                let raw = c.into_inner();
                value.push_str(std::str::from_utf8(&raw).map_err(|_| bad("CDATA not UTF-8"))?);
            }
            Event::Text(_) | Event::CData(_) => return Err(bad("text outside a field")),
            Event::End(_) => {
                if depth == 2 {
                    if let Some(name) = current.take() {
                        fields.insert(name, std::mem::take(&mut value));
                    }
                }
                depth = depth.checked_sub(1).ok_or_else(|| bad("unbalanced tags"))?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !saw_root || depth != 0 {
        return Err(bad("truncated document"));
    }
    Ok(fields)
}

type Aes256EcbDec = ecb::Decryptor<aes::Aes256>;
type Aes256EcbEnc = ecb::Encryptor<aes::Aes256>;

/// The refund-notify key: lowercase hex md5 of the API key (32 ASCII bytes).
fn req_info_key(api_key: &str) -> [u8; 32] {
    let hex = hex::encode(Md5::digest(api_key.as_bytes()));
    let mut key = [0u8; 32];
    key.copy_from_slice(hex.as_bytes());
    key
}

/// Decrypts a refund notify's `req_info` (base64, AES-256-ECB, PKCS#7).
pub fn decrypt_req_info(req_info: &str, api_key: &str) -> Result<Fields, PayWireError> {
    let cipher = base64::engine::general_purpose::STANDARD
        .decode(req_info.trim())
        .map_err(|_| PayWireError::BadCiphertext)?;
    let plain = Aes256EcbDec::new(&req_info_key(api_key).into())
        .decrypt_padded_vec_mut::<Pkcs7>(&cipher)
        .map_err(|_| PayWireError::BadCiphertext)?;
    // The plaintext is an <root> document; parse it as the flat <xml> form.
    let text = String::from_utf8(plain).map_err(|_| PayWireError::BadCiphertext)?;
    let normalized = text
        .replacen("<root>", "<xml>", 1)
        .replacen("</root>", "</xml>", 1);
    from_xml(normalized.as_bytes())
}

/// Encrypts `fields` as WeChat Pay does for `req_info` (the sandbox and tests).
pub fn encrypt_req_info(fields: &Fields, api_key: &str) -> String {
    let xml = to_xml(fields)
        .replacen("<xml>", "<root>", 1)
        .replacen("</xml>", "</root>", 1);
    let cipher = Aes256EcbEnc::new(&req_info_key(api_key).into())
        .encrypt_padded_vec_mut::<Pkcs7>(xml.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(cipher)
}

/// Builds a `Fields` map from pairs.
pub fn fields<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Fields {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Our answer to a WeChat Pay notify. WeChat re-sends until it gets
/// SUCCESS, so `Fail` means "send it again" (its reason is for their log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAck {
    /// Taken (or a repeat, or an anomaly already recorded): stop sending.
    Success,
    /// Not taken; WeChat will send it again.
    Fail(String),
}

impl NotifyAck {
    /// The XML body WeChat Pay expects.
    pub fn to_xml(&self) -> String {
        match self {
            NotifyAck::Success => "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>".to_owned(),
            NotifyAck::Fail(reason) => to_xml(&fields([
                ("return_code", "FAIL".to_owned()),
                ("return_msg", reason.clone()),
            ])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_vector() -> Fields {
        fields([
            ("appid", "wxd930ea5d5a258f4f".to_owned()),
            ("mch_id", "10000100".to_owned()),
            ("device_info", "1000".to_owned()),
            ("body", "test".to_owned()),
            ("nonce_str", "ibuaiVcKdpRxkhJA".to_owned()),
        ])
    }

    const DOC_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    #[test]
    fn known_answer_md5() {
        assert_eq!(
            sign(&doc_vector(), DOC_KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn known_answer_hmac_sha256() {
        assert_eq!(
            sign(&doc_vector(), DOC_KEY, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn empty_values_and_sign_are_not_signed() {
        let mut with_extras = doc_vector();
        with_extras.insert("attach".into(), String::new());
        with_extras.insert("sign".into(), "whatever".into());
        assert_eq!(
            sign(&with_extras, DOC_KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn verify_requires_sign_and_honours_sign_type() {
        let mut f = doc_vector();
        assert_eq!(
            verify(&f, DOC_KEY, SignType::Md5),
            Err(PayWireError::MissingSign)
        );
        f.insert("sign_type".into(), "HMAC-SHA256".into());
        let s = sign(&f, DOC_KEY, SignType::HmacSha256);
        f.insert("sign".into(), s);
        assert_eq!(verify(&f, DOC_KEY, SignType::Md5), Ok(()));
        f.insert("total_fee".into(), "1".into());
        assert_eq!(
            verify(&f, DOC_KEY, SignType::Md5),
            Err(PayWireError::BadSign)
        );
    }

    #[test]
    fn xml_round_trip_with_cdata_and_escapes() {
        let f = fields([
            ("body", "奶茶 <2杯> & \"糖\"".to_owned()),
            ("attach", "tricky ]]> inside".to_owned()),
            ("total_fee", "300".to_owned()),
        ]);
        assert_eq!(from_xml(to_xml(&f).as_bytes()), Ok(f));
        let plain = b"<xml><a>1 &amp; 2</a><b><![CDATA[x]]></b></xml>";
        let parsed = from_xml(plain).expect("parses");
        assert_eq!(parsed["a"], "1 & 2");
        assert_eq!(parsed["b"], "x");
    }

    #[test]
    fn malformed_xml_is_refused() {
        for bad in [
            &b"<xml><a>1</a>"[..],
            b"<xml><a><b>1</b></a></xml>",
            b"<root><a>1</a></root>",
            b"not xml",
            b"",
        ] {
            assert!(from_xml(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let huge = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_XML_BYTES));
        assert!(from_xml(huge.as_bytes()).is_err());
    }

    #[test]
    fn req_info_round_trip() {
        let f = fields([
            ("out_trade_no", "ABC".to_owned()),
            ("refund_status", "SUCCESS".to_owned()),
        ]);
        let enc = encrypt_req_info(&f, DOC_KEY);
        assert_eq!(decrypt_req_info(&enc, DOC_KEY), Ok(f));
        assert_eq!(
            decrypt_req_info(&enc, "another-key"),
            Err(PayWireError::BadCiphertext)
        );
    }
}
