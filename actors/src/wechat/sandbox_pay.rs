//! The sandbox's WeChat Pay: an in-process merchant backend that checks the
//! signed XML it receives, keeps prepay orders and refunds, and — when told
//! the customer paid — sends a signed notify to the service over HTTP, the
//! way WeChat Pay does. Tests can make it lose, duplicate, or hold back and
//! reorder notifies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::bill::{render, BillEntry, RenderLine};
use super::pay::{self, Fields};
use super::pay_api::{nonce, PaySigner, PayTransport};
use super::WeChatError;

/// How long the sandbox waits before sending a refund notify (WeChat's are
/// asynchronous too; the delay lets the refund call return first).
const REFUND_NOTIFY_DELAY: Duration = Duration::from_millis(50);
/// How long one notify POST may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Trade {
    NotPaid,
    Paid { transaction_id: String },
    Closed,
    Refunded,
}

#[derive(Debug, Clone)]
struct SimOrder {
    total_fee: u32,
    openid: String,
    prepay_id: String,
    notify_url: String,
    trade: Trade,
}

#[derive(Debug, Default)]
struct SimState {
    orders: HashMap<String, SimOrder>,
    /// out_refund_no → out_trade_no
    refunds: HashMap<String, String>,
    calls: HashMap<String, u64>,
    next_transaction: u64,
    /// Every payment and refund, for the trade bill.
    bill: Vec<BillRecord>,
}

/// One line of the sandbox's trade bill.
#[derive(Debug, Clone)]
struct BillRecord {
    at: time::OffsetDateTime,
    entry: BillEntry,
    openid: String,
    transaction_id: String,
}

/// Why the sandbox could not "pay" an order.
#[derive(Debug, thiserror::Error)]
pub enum SandboxPayError {
    /// No prepay exists for the order.
    #[error("no prepay exists for this order")]
    NoPrepay,
    /// The order is already paid or refunded.
    #[error("this order is already paid")]
    AlreadyPaid,
    /// The service did not answer SUCCESS.
    #[error("the notify was not acknowledged: {0}")]
    NotifyRejected(String),
}

/// The simulated WeChat Pay merchant backend.
pub struct PaySimulator {
    signer: PaySigner,
    state: Mutex<SimState>,
    http: reqwest::Client,
    suppress: AtomicU32,
    duplicates: AtomicU32,
    hold: std::sync::atomic::AtomicBool,
    held: Mutex<Vec<(String, String)>>,
    busy: AtomicU32,
}

impl PaySimulator {
    /// A simulator that signs (and checks signatures) like the merchant's account.
    pub fn new(signer: PaySigner) -> Self {
        let http = reqwest::Client::builder()
            .timeout(NOTIFY_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            signer,
            state: Mutex::new(SimState::default()),
            http,
            suppress: AtomicU32::new(0),
            duplicates: AtomicU32::new(0),
            hold: std::sync::atomic::AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
            busy: AtomicU32::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        // A poisoned lock only means a test thread panicked; the data is fine.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers the next `n` API calls SYSTEMERROR (WeChat Pay busy).
    pub fn fail_next_calls(&self, n: u32) {
        self.busy.store(n, Ordering::SeqCst);
    }

    /// Drops the next `n` payment notifies (a lost notify).
    pub fn suppress_next_notifies(&self, n: u32) {
        self.suppress.store(n, Ordering::SeqCst);
    }

    /// Sends each payment notify `1 + extra` times, concurrently.
    pub fn duplicate_notifies(&self, extra: u32) {
        self.duplicates.store(extra, Ordering::SeqCst);
    }

    /// Holds payment notifies back (`pay` returns at once) until
    /// [`PaySimulator::release_held`], to deliver them out of order.
    pub fn hold_notifies(&self, hold: bool) {
        self.hold.store(hold, Ordering::SeqCst);
    }

    /// Sends the held notifies, newest first when `reverse`; returns how
    /// many the service acknowledged with SUCCESS.
    pub async fn release_held(&self, reverse: bool) -> usize {
        let mut held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        if reverse {
            held.reverse();
        }
        let mut acknowledged = 0;
        for (url, xml) in held {
            if matches!(self.post_notify(&url, xml).await, Ok(a) if a.contains("SUCCESS")) {
                acknowledged += 1;
            }
        }
        acknowledged
    }

    /// How many calls were made to `path` (e.g. `/pay/unifiedorder`).
    pub fn calls(&self, path: &str) -> u64 {
        self.state().calls.get(path).copied().unwrap_or(0)
    }

    /// How much was refunded of `out_trade_no`, in fen (None: no refund).
    pub fn refunded_fen(&self, out_trade_no: &str) -> Option<u64> {
        self.state()
            .bill
            .iter()
            .find_map(|record| match &record.entry {
                BillEntry::Refund {
                    out_trade_no: trade,
                    amount_fen,
                    ..
                } if trade == out_trade_no => Some(*amount_fen),
                _ => None,
            })
    }

    /// The refunds requested so far, as (out_trade_no, out_refund_no).
    pub fn refunds(&self) -> Vec<(String, String)> {
        let state = self.state();
        state
            .refunds
            .iter()
            .map(|(r, t)| (t.clone(), r.clone()))
            .collect()
    }

    /// Makes the customer pay `out_trade_no`, then sends the notify over
    /// HTTP. A closed trade can be paid too: that is the race in which the
    /// customer pays in the instant the merchant closes it.
    pub async fn pay(&self, out_trade_no: &str) -> Result<(), SandboxPayError> {
        let (notify, url) = self.mark_paid(out_trade_no)?;
        if self
            .suppress
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(());
        }
        let copies = 1 + self.duplicates.load(Ordering::SeqCst);
        let xml = pay::to_xml(&notify);
        if self.hold.load(Ordering::SeqCst) {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.extend((0..copies).map(|_| (url.clone(), xml.clone())));
            return Ok(());
        }
        let sends = (0..copies).map(|_| self.post_notify(&url, xml.clone()));
        let answers = futures::future::join_all(sends).await;
        for answer in answers {
            let answer = answer?;
            if !answer.contains("SUCCESS") {
                return Err(SandboxPayError::NotifyRejected(answer));
            }
        }
        Ok(())
    }

    fn mark_paid(&self, out_trade_no: &str) -> Result<(Fields, String), SandboxPayError> {
        let mut state = self.state();
        state.next_transaction += 1;
        let transaction_id = format!("4200{:024}", state.next_transaction);
        let order = state
            .orders
            .get_mut(out_trade_no)
            .ok_or(SandboxPayError::NoPrepay)?;
        if !matches!(order.trade, Trade::NotPaid | Trade::Closed) {
            return Err(SandboxPayError::AlreadyPaid);
        }
        order.trade = Trade::Paid {
            transaction_id: transaction_id.clone(),
        };
        let record = BillRecord {
            at: time::OffsetDateTime::now_utc(),
            entry: BillEntry::Payment {
                out_trade_no: out_trade_no.to_owned(),
                amount_fen: u64::from(order.total_fee),
            },
            openid: order.openid.clone(),
            transaction_id: transaction_id.clone(),
        };
        let notify = pay::fields([
            ("result_code", "SUCCESS".to_owned()),
            ("return_code", "SUCCESS".to_owned()),
            ("openid", order.openid.clone()),
            ("is_subscribe", "N".to_owned()),
            ("trade_type", "JSAPI".to_owned()),
            ("bank_type", "CMC".to_owned()),
            ("total_fee", order.total_fee.to_string()),
            ("cash_fee", order.total_fee.to_string()),
            ("fee_type", "CNY".to_owned()),
            ("transaction_id", transaction_id),
            ("out_trade_no", out_trade_no.to_owned()),
            ("time_end", time_end()),
        ]);
        let url = order.notify_url.clone();
        state.bill.push(record);
        Ok((self.signer.seal(notify), url))
    }

    async fn post_notify(&self, url: &str, xml: String) -> Result<String, SandboxPayError> {
        let res = self
            .http
            .post(url)
            .header("Content-Type", "text/xml")
            .body(xml)
            .send()
            .await
            .map_err(|e| SandboxPayError::NotifyRejected(e.to_string()))?;
        res.text()
            .await
            .map_err(|e| SandboxPayError::NotifyRejected(e.to_string()))
    }

    /// Answers one API call the way WeChat Pay would.
    fn handle(&self, path: &str, xml: &str) -> Fields {
        let request = match pay::from_xml(xml.as_bytes()) {
            Ok(f) => f,
            Err(e) => return fail(&e.to_string()),
        };
        if self.signer.verify(&request).is_err() {
            return fail("签名错误");
        }
        if self
            .busy
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return result_fail("SYSTEMERROR", "系统超时");
        }
        let get = |k: &str| request.get(k).cloned().unwrap_or_default();
        let mut state = self.state();
        *state.calls.entry(path.to_owned()).or_default() += 1;
        let answer = match path {
            "/pay/unifiedorder" => unified_order(&mut state, &request),
            "/pay/orderquery" => match state.orders.get(&get("out_trade_no")) {
                None => result_fail("ORDERNOTEXIST", "order does not exist"),
                Some(o) => order_query(o),
            },
            "/pay/closeorder" => match state.orders.get_mut(&get("out_trade_no")) {
                None => result_fail("ORDERNOTEXIST", "order does not exist"),
                Some(o) if matches!(o.trade, Trade::Paid { .. } | Trade::Refunded) => {
                    result_fail("ORDERPAID", "order paid")
                }
                Some(o) => {
                    o.trade = Trade::Closed;
                    result_success()
                }
            },
            "/secapi/pay/refund" => self.refund(&mut state, &request),
            "/pay/refundquery" => {
                let trade = get("out_trade_no");
                if state.refunds.values().any(|t| *t == trade) {
                    let mut a = result_success();
                    a.insert("refund_status_0".into(), "SUCCESS".into());
                    a
                } else {
                    result_fail("REFUNDNOTEXIST", "refund does not exist")
                }
            }
            _ => return fail("unknown API"),
        };
        self.signer.seal(answer)
    }

    fn refund(&self, state: &mut SimState, request: &Fields) -> Fields {
        let get = |k: &str| request.get(k).cloned().unwrap_or_default();
        let (trade_no, refund_no) = (get("out_trade_no"), get("out_refund_no"));
        if state.refunds.get(&refund_no) == Some(&trade_no) {
            return result_success(); // idempotent by out_refund_no
        }
        let Some(order) = state.orders.get_mut(&trade_no) else {
            return result_fail("ORDERNOTEXIST", "order does not exist");
        };
        if !matches!(order.trade, Trade::Paid { .. }) {
            return result_fail("TRADE_STATE_ERROR", "order is not paid");
        }
        // WeChat Pay takes a refund of part of the payment (a dispute
        // settled with some money back); never more than was paid.
        let refund_fee = match get("refund_fee").parse::<u32>() {
            Ok(fee) if fee >= 1 && fee <= order.total_fee => fee,
            _ => return result_fail("PARAM_ERROR", "refund_fee must be 1..=total_fee"),
        };
        if get("total_fee") != order.total_fee.to_string() {
            return result_fail("PARAM_ERROR", "total_fee does not match the order");
        }
        order.trade = Trade::Refunded;
        let order = order.clone();
        state.bill.push(BillRecord {
            at: time::OffsetDateTime::now_utc(),
            entry: BillEntry::Refund {
                out_trade_no: trade_no.clone(),
                out_refund_no: refund_no.clone(),
                amount_fen: u64::from(refund_fee),
            },
            openid: order.openid.clone(),
            transaction_id: String::new(),
        });
        state.refunds.insert(refund_no.clone(), trade_no.clone());
        let info = pay::fields([
            ("out_trade_no", trade_no),
            ("out_refund_no", refund_no),
            ("refund_id", format!("5030{}", nonce()[..16].to_owned())),
            ("total_fee", order.total_fee.to_string()),
            ("refund_fee", refund_fee.to_string()),
            ("settlement_refund_fee", refund_fee.to_string()),
            ("refund_status", "SUCCESS".to_owned()),
            ("success_time", time_end()),
            ("refund_recv_accout", "支付用户零钱".to_owned()),
            ("refund_request_source", "API".to_owned()),
        ]);
        let notify = pay::fields([
            ("return_code", "SUCCESS".to_owned()),
            ("appid", self.signer.appid.clone()),
            ("mch_id", self.signer.mch_id.clone()),
            ("nonce_str", nonce()),
            (
                "req_info",
                pay::encrypt_req_info(&info, self.signer.api_key.expose()),
            ),
        ]);
        let (http, url, xml) = (self.http.clone(), get("notify_url"), pay::to_xml(&notify));
        if !url.is_empty() {
            actix_rt::spawn(async move {
                actix_rt::time::sleep(REFUND_NOTIFY_DELAY).await;
                let sent = http
                    .post(&url)
                    .header("Content-Type", "text/xml")
                    .body(xml)
                    .send()
                    .await;
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "sandbox refund notify failed; refundquery will find it");
                }
            });
        }
        let mut answer = result_success();
        answer.insert("refund_id".into(), "sandbox".into());
        answer
    }
}

#[async_trait]
impl PayTransport for std::sync::Arc<PaySimulator> {
    async fn post(
        &self,
        path: &'static str,
        xml: String,
        _with_cert: bool,
    ) -> Result<Vec<u8>, WeChatError> {
        if path == "/pay/downloadbill" {
            return Ok(self.download_bill(&xml));
        }
        Ok(pay::to_xml(&self.handle(path, &xml)).into_bytes())
    }
}

impl PaySimulator {
    /// `downloadbill`: the ALL bill of a China day from the simulator's
    /// records, or WeChat Pay's XML error.
    fn download_bill(&self, xml: &str) -> Vec<u8> {
        let request = match pay::from_xml(xml.as_bytes()) {
            Ok(f) if self.signer.verify(&f).is_ok() => f,
            _ => return pay::to_xml(&fail("签名错误")).into_bytes(),
        };
        let date = request.get("bill_date").cloned().unwrap_or_default();
        let state = self.state();
        let lines: Vec<RenderLine<'_>> = state
            .bill
            .iter()
            .filter(|r| china_date(r.at) == date)
            .map(|r| RenderLine {
                at: r
                    .at
                    .to_offset(crate::domain::CHINA)
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second]"
                    ))
                    .unwrap_or_default(),
                entry: &r.entry,
                openid: &r.openid,
                transaction_id: &r.transaction_id,
            })
            .collect();
        if lines.is_empty() {
            return pay::to_xml(&pay::fields([
                ("return_code", "FAIL".to_owned()),
                ("return_msg", "No Bill Exist".to_owned()),
                ("error_code", "20002".to_owned()),
            ]))
            .into_bytes();
        }
        render(&self.signer.appid, &self.signer.mch_id, &lines).into_bytes()
    }

    /// Makes the bill say a refund was of `amount_fen` (a bill that
    /// disagrees with the ledger, for tests).
    pub fn alter_bill_refund(&self, out_refund_no: &str, amount_fen: u64) {
        for record in &mut self.state().bill {
            if let BillEntry::Refund {
                out_refund_no: no,
                amount_fen: amount,
                ..
            } = &mut record.entry
            {
                if no == out_refund_no {
                    *amount = amount_fen;
                }
            }
        }
    }
}

/// `yyyyMMdd` of the China day `at` falls on.
fn china_date(at: time::OffsetDateTime) -> String {
    crate::domain::ChinaDay::of(at).compact()
}

fn unified_order(state: &mut SimState, request: &Fields) -> Fields {
    let get = |k: &str| request.get(k).cloned().unwrap_or_default();
    let trade_no = get("out_trade_no");
    let Ok(total_fee) = get("total_fee").parse::<u32>() else {
        return result_fail("PARAM_ERROR", "total_fee");
    };
    if get("trade_type") != "JSAPI" || get("openid").is_empty() || get("notify_url").is_empty() {
        return result_fail("PARAM_ERROR", "JSAPI needs openid and notify_url");
    }
    if let Some(existing) = state.orders.get(&trade_no) {
        if existing.total_fee != total_fee {
            return result_fail(
                "INVALID_REQUEST",
                "参数错误: out_trade_no reused with other parameters",
            );
        }
        if existing.trade != Trade::NotPaid {
            return result_fail("ORDERPAID", "order paid or closed");
        }
        let mut a = result_success();
        a.insert("prepay_id".into(), existing.prepay_id.clone());
        a.insert("trade_type".into(), "JSAPI".into());
        return a;
    }
    let prepay_id = format!("wx{}", nonce());
    state.orders.insert(
        trade_no,
        SimOrder {
            total_fee,
            openid: get("openid"),
            prepay_id: prepay_id.clone(),
            notify_url: get("notify_url"),
            trade: Trade::NotPaid,
        },
    );
    let mut a = result_success();
    a.insert("prepay_id".into(), prepay_id);
    a.insert("trade_type".into(), "JSAPI".into());
    a
}

fn order_query(order: &SimOrder) -> Fields {
    let mut a = result_success();
    let state = match &order.trade {
        Trade::NotPaid => "NOTPAY",
        Trade::Closed => "CLOSED",
        Trade::Refunded => "REFUND",
        Trade::Paid { transaction_id } => {
            a.insert("transaction_id".into(), transaction_id.clone());
            a.insert("total_fee".into(), order.total_fee.to_string());
            "SUCCESS"
        }
    };
    a.insert("trade_state".into(), state.into());
    a
}

fn result_success() -> Fields {
    pay::fields([
        ("return_code", "SUCCESS".to_owned()),
        ("result_code", "SUCCESS".to_owned()),
    ])
}

fn result_fail(code: &str, message: &str) -> Fields {
    pay::fields([
        ("return_code", "SUCCESS".to_owned()),
        ("result_code", "FAIL".to_owned()),
        ("err_code", code.to_owned()),
        ("err_code_des", message.to_owned()),
    ])
}

fn fail(message: &str) -> Fields {
    pay::fields([
        ("return_code", "FAIL".to_owned()),
        ("return_msg", message.to_owned()),
    ])
}

fn time_end() -> String {
    let now = time::OffsetDateTime::now_utc().to_offset(crate::domain::CHINA);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}
