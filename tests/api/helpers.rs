//! Test harness: an in-process app with a temp sled dir, and the real binary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test;
use lastmile::config::Settings;
use lastmile::startup::{app, start_services, WeChatClients};
use lastmile::state::AppState;
use lastmile_actors::wechat::pay::{self, Fields};
use lastmile_actors::wechat::{SandboxWeChat, SignType};
use serde_json::{json, Value};
use tempfile::TempDir;

/// Loads the default settings with a temp storage dir and a free port.
pub fn test_settings(dir: &Path) -> Settings {
    let mut settings = Settings::load(None).expect("config/default.toml loads");
    settings.storage.path = dir.join("data");
    settings.objects.local_dir = dir.join("data/files");
    settings.http.bind = "127.0.0.1:0".into();
    // Most tests need working couriers, not the review queue; the review
    // tests turn it back on.
    settings.couriers.review = false;
    crate::postgres::apply_engine(&mut settings);
    settings
}

/// A valid create-order body.
pub fn order_body() -> Value {
    json!({
        "kind": "express",
        "pickup": {"place_id": "cainiao-north", "detail": "shelf 3-12"},
        "dropoff": {"place_id": "dorm-3", "detail": "room 402"},
        "pickup_code": "5-3-2201",
        "fee_fen": 300,
        "note": "请放门口"
    })
}

/// The app in process: its service, its state, and the sandbox behind it.
pub struct TestApp<S> {
    /// The actix service under test.
    pub svc: S,
    /// Handles on the actors.
    pub state: AppState,
    /// The WeChat simulator it uses.
    pub wechat: Arc<SandboxWeChat>,
    /// The database (to start a second actor on it, as a restart would).
    pub store: lastmile_actors::storage::Engine,
    /// Keeps the temp dir alive.
    pub _dir: TempDir,
}

/// A response as status + parsed JSON (Null when the body is not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub content_type: String,
}

impl Reply {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Starts an in-process app with default settings.
pub async fn spawn_app() -> TestApp<
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
> {
    spawn_app_with(|_| {}).await
}

/// Starts an in-process app after `tweak` adjusts the settings.
pub async fn spawn_app_with(
    tweak: impl FnOnce(&mut Settings),
) -> TestApp<
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    tweak(&mut settings);
    // A tweak may move the store: it is the engine's store of that path.
    crate::postgres::apply_engine(&mut settings);
    let wechat = Arc::new(SandboxWeChat::new(&settings.wechat));
    let clients = WeChatClients::sandbox(wechat.clone());
    let services =
        start_services(&settings, clients, "http://127.0.0.1:9").expect("services start");
    let svc = test::init_service(app(services.state.clone())).await;
    TestApp {
        svc,
        state: services.state,
        store: services.store,
        wechat,
        _dir: dir,
    }
}

impl<S, B> TestApp<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// Sends a request and parses the answer.
    pub async fn send(&self, req: test::TestRequest) -> Reply {
        let res = test::call_service(&self.svc, req.to_request()).await;
        let status = res.status();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = test::read_body(res).await;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            content_type,
        }
    }

    /// Logs in with `code`; returns (token, openid).
    pub async fn login(&self, code: &str) -> (String, String) {
        let reply = self
            .send(
                test::TestRequest::post()
                    .uri("/api/v1/auth/login")
                    .set_json(json!({"code": code})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {}", reply.body);
        (
            reply.body["token"].as_str().expect("token").to_owned(),
            reply.body["openid"].as_str().expect("openid").to_owned(),
        )
    }

    /// POST /api/v1/orders with a JSON body.
    pub async fn create_order(&self, token: &str, body: &Value) -> Reply {
        self.send(
            test::TestRequest::post()
                .uri("/api/v1/orders")
                .insert_header(("Authorization", format!("Bearer {token}")))
                .set_json(body),
        )
        .await
    }

    /// GET /api/v1/orders/{id}
    pub async fn get_order(&self, token: &str, id: &str) -> Reply {
        self.send(
            test::TestRequest::get()
                .uri(&format!("/api/v1/orders/{id}"))
                .insert_header(("Authorization", format!("Bearer {token}"))),
        )
        .await
    }

    /// GET /api/v1/orders?{query}
    pub async fn list_orders(&self, token: &str, query: &str) -> Reply {
        self.send(
            test::TestRequest::get()
                .uri(&format!("/api/v1/orders?{query}"))
                .insert_header(("Authorization", format!("Bearer {token}"))),
        )
        .await
    }

    /// POST /api/v1/orders/{id}/cancel with no body.
    pub async fn cancel_order(&self, token: &str, id: &str) -> Reply {
        self.send(
            test::TestRequest::post()
                .uri(&format!("/api/v1/orders/{id}/cancel"))
                .insert_header(("Authorization", format!("Bearer {token}"))),
        )
        .await
    }

    /// POST /api/v1/orders/{id}/pay
    pub async fn pay_order(&self, token: &str, id: &str) -> Reply {
        self.send(
            test::TestRequest::post()
                .uri(&format!("/api/v1/orders/{id}/pay"))
                .insert_header(("Authorization", format!("Bearer {token}"))),
        )
        .await
    }

    /// POSTs raw XML to a WeChat callback; returns (status, body text).
    pub async fn post_xml(&self, path: &str, body: impl Into<Vec<u8>>) -> (StatusCode, String) {
        let req = test::TestRequest::post()
            .uri(path)
            .insert_header(("Content-Type", "text/xml"))
            .set_payload(body.into())
            .to_request();
        let res = test::call_service(&self.svc, req).await;
        let status = res.status();
        let bytes = test::read_body(res).await;
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Creates an order for `token` and pays it (prepay + a signed notify).
    pub async fn paid_order(&self, token: &str, openid: &str) -> String {
        let created = self.create_order(token, &order_body()).await;
        let id = created.body["id"].as_str().expect("id").to_owned();
        self.pay(token, openid, &id).await;
        id
    }

    /// Pays an existing order: prepay, the simulated customer pays at the
    /// sandbox (so its orderquery and refunds know the trade), and the test
    /// delivers the signed notify (the sandbox's own could not reach an
    /// in-process app).
    pub async fn pay(&self, token: &str, openid: &str, id: &str) {
        use lastmile_actors::wechat::{SignType, WeChat};
        assert_eq!(self.pay_order(token, id).await.status, StatusCode::OK);
        let sim = self.wechat.pay_simulator();
        sim.suppress_next_notifies(1);
        sim.pay(id).await.expect("paid at the sandbox");
        let order = self.get_order(token, id).await.body;
        let total =
            order["fee_fen"].as_u64().expect("fee") + order["tip_fen"].as_u64().expect("tip");
        let total = u32::try_from(total).expect("a fen amount");
        let signer = self.wechat.pay().signer().clone();
        let mut notify = notify_fields(&signer.appid, &signer.mch_id, id, openid, total);
        notify.insert("transaction_id".into(), format!("42{}", &id[..20]));
        let notify = signed_xml(notify, signer.api_key.expose(), SignType::Md5);
        let (_, answer) = self.post_xml("/api/v1/wechat/pay/notify", notify).await;
        assert!(
            answer.contains("SUCCESS") && !answer.contains("FAIL"),
            "{answer}"
        );
    }

    /// The value of one Prometheus series (`name{labels}` as rendered), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let req = test::TestRequest::get().uri("/metrics").to_request();
        let res = test::call_service(&self.svc, req).await;
        let text = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
        text.lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }

    /// POST with a JSON body (or none) as `token`.
    pub async fn post_as(&self, token: &str, uri: &str, body: Option<Value>) -> Reply {
        let mut req = test::TestRequest::post()
            .uri(uri)
            .insert_header(("Authorization", format!("Bearer {token}")));
        if let Some(b) = body {
            req = req.set_json(b);
        }
        self.send(req).await
    }

    /// GET as `token`.
    pub async fn get_as(&self, token: &str, uri: &str) -> Reply {
        self.send(
            test::TestRequest::get()
                .uri(uri)
                .insert_header(("Authorization", format!("Bearer {token}"))),
        )
        .await
    }

    /// Logs in, becomes a courier and goes online at `place`; returns (token, openid).
    pub async fn online_courier(&self, code: &str, place: &str) -> (String, String) {
        let (token, openid) = self.login(code).await;
        let reg = self
            .post_as(
                &token,
                "/api/v1/couriers/me",
                Some(json!({"name": code, "phone": "13800138000"})),
            )
            .await;
        assert_eq!(reg.status, StatusCode::OK, "{}", reg.body);
        let on = self
            .post_as(
                &token,
                "/api/v1/couriers/me/online",
                Some(json!({"place_id": place})),
            )
            .await;
        assert_eq!(on.status, StatusCode::OK, "{}", on.body);
        (token, openid)
    }

    /// True once order `id`, as `token` sees it, has `status` (within `limit`).
    pub async fn reaches(&self, token: &str, id: &str, status: &str, limit: Duration) -> bool {
        eventually(limit, || async {
            self.status_of(token, id).await == status
        })
        .await
    }

    /// The status of an order as its customer sees it.
    pub async fn status_of(&self, token: &str, id: &str) -> String {
        self.get_order(token, id).await.body["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// How many orders the customer has, by listing every page.
    pub async fn count_orders(&self, token: &str) -> usize {
        let mut count = 0;
        let mut cursor = String::new();
        loop {
            let reply = self
                .list_orders(token, &format!("limit=100&cursor={cursor}"))
                .await;
            assert_eq!(reply.status, StatusCode::OK);
            count += reply.body["orders"].as_array().map_or(0, Vec::len);
            match reply.body["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => return count,
            }
        }
    }
}

/// Polls `check` until it is true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Runs the binary once (on a temp data dir, any port) and expects it to
/// refuse to start: exit 2 with one line on stderr, no panic. Returns
/// that line.
pub fn refuses_to_start(data: &Path, args: &[String], env: &[(&str, String)], why: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lastmile"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LASTMILE__STORAGE__PATH", data)
        .env("LASTMILE__HTTP__BIND", "127.0.0.1:0")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{why}: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{why}: one line, got {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{why}: {stderr}");
    stderr
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The real `lastmile` binary, run from the project root on a temp data dir.
pub struct BinaryApp {
    child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    env: Vec<(String, String)>,
    log: Option<PathBuf>,
    /// `--config FILE`, layered over the defaults.
    config: Option<PathBuf>,
}

impl BinaryApp {
    /// Starts the binary with extra `LASTMILE__*` settings and waits until ready.
    pub async fn start(data: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_logged(data, env, None).await
    }

    /// [`BinaryApp::start`], with stdout and stderr (every log line)
    /// appended to `log` when given.
    pub async fn start_logged(data: &Path, env: &[(&str, &str)], log: Option<&Path>) -> Self {
        let mut app = Self {
            child: None,
            port: free_port(),
            data: data.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: log.map(Path::to_owned),
            config: None,
        };
        app.env.extend(crate::postgres::engine_env(data));
        app.launch().await;
        app
    }

    /// [`BinaryApp::start`] with an optional `--config file` and any
    /// environment (not only `LASTMILE__*`).
    pub async fn start_configured(
        data: &Path,
        config: Option<&Path>,
        env: Vec<(String, String)>,
    ) -> Self {
        let mut app = Self {
            child: None,
            port: free_port(),
            data: data.to_owned(),
            env,
            log: None,
            config: config.map(Path::to_owned),
        };
        app.env.extend(crate::postgres::engine_env(data));
        app.launch().await;
        app
    }

    fn output(&self) -> (Stdio, Stdio) {
        let file = self.log.as_ref().and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        match file.and_then(|f| f.try_clone().ok().map(|g| (f, g))) {
            Some((out, err)) => (Stdio::from(out), Stdio::from(err)),
            None => (Stdio::null(), Stdio::inherit()),
        }
    }

    /// Sets (or replaces) an environment variable for the next launch.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts (again) on the same port and data dir.
    pub async fn launch(&mut self) {
        let (stdout, stderr) = self.output();
        let child = Command::new(env!("CARGO_BIN_EXE_lastmile"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("LASTMILE__HTTP__BIND", format!("127.0.0.1:{}", self.port))
            .env("LASTMILE__STORAGE__PATH", &self.data)
            .env("LASTMILE__HTTP__WORKERS", "2")
            // As in process: couriers work at once unless a test reviews them.
            .env("LASTMILE__COURIERS__REVIEW", "false")
            .env("RUST_LOG", "warn")
            .args(
                self.config
                    .iter()
                    .flat_map(|c| ["--config".into(), c.display().to_string()]),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("binary starts");
        self.child = Some(child);
        let url = self.url("/readyz");
        let client = reqwest::Client::new();
        let ready = eventually(Duration::from_secs(20), || {
            let req = client.get(&url).send();
            async move { req.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        assert!(ready, "binary did not become ready");
    }

    /// A URL on this instance.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        stop_with(&mut child, "TERM", Duration::from_secs(20))
    }

    /// Logs in; returns (token, openid).
    pub async fn login(&self, client: &reqwest::Client, code: &str) -> (String, String) {
        login_over_http(client, &self.url(""), code).await
    }

    /// Logs in as `code`, creates an order and pays it the way a customer
    /// would: prepay, then the sandbox pays and notifies over HTTP.
    /// Returns (token, order id).
    /// Logs in with `code`, becomes a courier named `name` and goes online
    /// at `place`; returns (token, openid).
    pub async fn online_courier(
        &self,
        client: &reqwest::Client,
        code: &str,
        name: &str,
        place: &str,
    ) -> (String, String) {
        let (token, openid) = self.login(client, code).await;
        for (path, body) in [
            (
                "/api/v1/couriers/me",
                json!({"name": name, "phone": "13800138000"}),
            ),
            ("/api/v1/couriers/me/online", json!({"place_id": place})),
        ] {
            let r = client
                .post(self.url(path))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .expect("courier call");
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
        (token, openid)
    }

    pub async fn sandbox_paid_order(
        &self,
        client: &reqwest::Client,
        code: &str,
    ) -> (String, String) {
        let (token, _) = self.login(client, code).await;
        let id = create_order_over_http(client, &self.url(""), &token).await;
        let prepay = client
            .post(self.url(&format!("/api/v1/orders/{id}/pay")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("prepay");
        assert_eq!(prepay.status(), reqwest::StatusCode::OK);
        let paid = client
            .post(self.url(&format!("/sandbox/pay/{id}")))
            .send()
            .await
            .expect("sandbox pay");
        assert_eq!(paid.status(), reqwest::StatusCode::OK);
        (token, id)
    }
}

/// Creates the standard order at a running service `base`; returns its id.
pub async fn create_order_over_http(client: &reqwest::Client, base: &str, token: &str) -> String {
    let created: Value = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(token)
        .json(&order_body())
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("order JSON");
    created["id"].as_str().expect("id").to_owned()
}

/// Logs in at a running service `base`; returns (token, openid).
pub async fn login_over_http(client: &reqwest::Client, base: &str, code: &str) -> (String, String) {
    let body: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("login request")
        .json()
        .await
        .expect("login JSON");
    (
        body["token"].as_str().expect("token").to_owned(),
        body["openid"].as_str().expect("openid").to_owned(),
    )
}

impl Drop for BinaryApp {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A successful-payment notify as WeChat Pay sends it, unsigned (every
/// test that plays WeChat Pay builds its notifies here).
pub fn notify_fields(
    appid: &str,
    mch_id: &str,
    order_id: &str,
    openid: &str,
    total_fee: u32,
) -> Fields {
    pay::fields([
        ("appid", appid.to_owned()),
        ("mch_id", mch_id.to_owned()),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".to_owned()),
        ("result_code", "SUCCESS".to_owned()),
        ("return_code", "SUCCESS".to_owned()),
        ("openid", openid.to_owned()),
        ("is_subscribe", "N".to_owned()),
        ("trade_type", "JSAPI".to_owned()),
        ("bank_type", "CMC".to_owned()),
        ("total_fee", total_fee.to_string()),
        ("cash_fee", total_fee.to_string()),
        ("fee_type", "CNY".to_owned()),
        ("transaction_id", "4200000000202611250000000001".to_owned()),
        ("out_trade_no", order_id.to_owned()),
        ("time_end", "20261125120000".to_owned()),
    ])
}

/// `fields` signed with `key` the way WeChat Pay signs, as its XML.
pub fn signed_xml(mut fields: Fields, key: &str, sign_type: SignType) -> String {
    let sign = pay::sign(&fields, key, sign_type);
    fields.insert("sign".into(), sign);
    pay::to_xml(&fields)
}

/// One install at a time in this test binary: tests run in parallel and
/// apt (or pip) lets only one of them hold its lock.
static INSTALLS: std::sync::Mutex<bool> = std::sync::Mutex::new(false);

/// Makes sure `command` is on the machine, installing Debian's `package`
/// when it is not (tests install what they need, as `.ci/run` does).
pub fn ensure_tool(command: &str, package: &str) {
    let present = || {
        Command::new("sh")
            .args([
                "-c",
                &format!("command -v {command} || test -x /usr/sbin/{command}"),
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ensure_package(package, &present, command);
}

/// Makes sure a font with Chinese glyphs is installed (the console's
/// labels are Chinese; without one its screenshots show boxes).
pub fn ensure_cjk_font() {
    let present = || {
        Command::new("fc-list")
            .arg(":lang=zh")
            .output()
            .is_ok_and(|out| !out.stdout.is_empty())
    };
    ensure_package("fonts-wqy-microhei", &present, "a CJK font");
}

/// Installs Debian's `package` unless `present` already holds, one
/// install at a time; fails the test when `what` is still missing.
pub fn ensure_package(package: &str, present: &dyn Fn() -> bool, what: &str) {
    let mut updated = INSTALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if present() {
        return;
    }
    // Another process (a second test binary, unattended upgrades) may hold
    // dpkg's lock: apt is told to wait for it rather than fail.
    let apt = "apt-get -o DPkg::Lock::Timeout=600 -qq";
    let script = if *updated {
        format!("{apt} install -y {package}")
    } else {
        format!("{apt} update && {apt} install -y {package}")
    };
    let installed = Command::new("sh")
        .args(["-c", &script])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    *updated |= installed;
    assert!(
        installed && present(),
        "{what} (Debian package {package}) is needed"
    );
}

/// Makes sure python3 can import `module`, installing `package` from PyPI
/// when it cannot (under the same lock as the Debian installs).
pub fn ensure_python_module(module: &str, package: &str) {
    let present = || {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let _one_at_a_time = INSTALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !present() {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "-q", package])
            .stdout(Stdio::null())
            .status();
    }
    assert!(present(), "python3 with {package} (PyPI) is needed");
}

/// Sends `signal` to `child` and waits up to `limit` for it to exit; kills
/// it only if it has not. Returns its exit status.
pub fn stop_with(
    child: &mut Child,
    signal: &str,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// `GET url` with a bearer token, its JSON answer.
pub async fn get_json(client: &reqwest::Client, url: String, token: &str) -> Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}
