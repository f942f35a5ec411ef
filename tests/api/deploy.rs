//! The deployment as shipped: real nginx (Debian's package) with
//! `config/nginx.conf` and a throwaway self-signed certificate in front of
//! the release binary run with the unit's own settings, and
//! `config/lastmile.service` checked by `systemd-analyze verify` and
//! `systemd-analyze security`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{ensure_tool, eventually, free_port, order_body, stop_with, BinaryApp};

/// The console's token in the deployment tests' credential file.
const ADMIN_TOKEN: &str = "deploy-test-admin-token-0123";

/// nginx started on `config/nginx.conf`, rewritten only where a test must:
/// its ports, the certificate, the upstream port and where it writes.
struct Nginx {
    child: Child,
    https: u16,
    http: u16,
    access_log: PathBuf,
}

impl Nginx {
    /// The worker processes under the master.
    fn workers(&self) -> Vec<u32> {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // nginx's own graceful stop: the master tells its workers to finish
        // and waits for them. Killing the master would orphan them.
        stop_with(&mut self.child, "QUIT", Duration::from_secs(10));
    }
}

/// Whether `pid` is a live (not zombie) process.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    ensure_tool("openssl", "openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server certificate, not a CA (rustls refuses a CA as the end).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "openssl made a certificate");
    (cert, key)
}

/// Which addresses the shipped `geo $operator` block lets in.
#[derive(Clone, Copy, PartialEq)]
enum Operators {
    /// As shipped: this machine (the tests' client) is an operator.
    AsShipped,
    /// The list without this machine: the tests' client is the public.
    Elsewhere,
}

async fn start_nginx(
    dir: &Path,
    upstream: u16,
    cert: &Path,
    key: &Path,
    operators: Operators,
) -> Nginx {
    ensure_tool("nginx", "nginx");
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/nginx.conf"))
            .expect("config/nginx.conf");
    let (https, http) = (free_port(), free_port());
    let path = |name: &str| dir.join(name).display().to_string();
    let mut edits = vec![
        ("pid /run/nginx.pid;", format!("pid {};", path("nginx.pid"))),
        (
            "error_log /var/log/nginx/error.log warn;",
            format!("error_log {} warn;", path("error.log")),
        ),
        ("/var/log/nginx/access.log", path("access.log")),
        (
            "server 127.0.0.1:8080;",
            format!("server 127.0.0.1:{upstream};"),
        ),
        (
            "listen 443 ssl http2;",
            format!("listen 127.0.0.1:{https} ssl http2;"),
        ),
        ("listen 80;", format!("listen 127.0.0.1:{http};")),
        (
            "/etc/lastmile/tls/fullchain.pem",
            cert.display().to_string(),
        ),
        ("/etc/lastmile/tls/privkey.pem", key.display().to_string()),
    ];
    if operators == Operators::Elsewhere {
        edits.push(("        127.0.0.1 1;\n", "        192.0.2.1 1;\n".into()));
    }
    let conf = edits.iter().fold(shipped, |conf, (from, to)| {
        assert!(conf.contains(from), "nginx.conf has {from}");
        conf.replace(from, to)
    });
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).expect("write nginx.conf");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&file)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx {
        child,
        https,
        http,
        access_log: dir.join("access.log"),
    };
    let up = eventually(Duration::from_secs(10), || async {
        std::net::TcpStream::connect(("127.0.0.1", https)).is_ok()
    })
    .await;
    assert!(up, "nginx listens");
    nginx
}

/// The `Environment=` settings and the credential file name of the
/// shipped unit, with the state directory moved to `state`.
fn unit_settings(state: &Path) -> (Vec<(String, String)>, String) {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/lastmile.service"
    ))
    .expect("config/lastmile.service");
    let state = state.display().to_string();
    let env = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("/var/lib/lastmile", &state)))
        .collect();
    let credential = unit
        .lines()
        .find_map(|l| l.strip_prefix("LoadCredential="))
        .and_then(|c| c.split_once(':'))
        .map(|(name, _)| name.to_owned())
        .expect("the unit loads its secrets as a credential");
    (env, credential)
}

/// The release binary run as the unit runs it (its environment, its
/// state directory, its secrets as a systemd credential; trusting the
/// proxy, `rate_limit` per second) behind the shipped nginx, and an HTTPS
/// client that trusts its throwaway certificate.
struct Site {
    client: reqwest::Client,
    base: String,
    state: PathBuf,
    // Dropped in this order: nginx, then the service, then their files.
    nginx: Nginx,
    _app: BinaryApp,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn start(rate_limit: u32) -> Self {
        Self::start_for(rate_limit, Operators::AsShipped).await
    }

    async fn start_for(rate_limit: u32, operators: Operators) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let settings = dir.path().join("lastmile.toml");
        std::fs::write(
            &settings,
            format!("[http]\ntrusted_proxies = [\"127.0.0.1\"]\nrate_limit = {rate_limit}\n"),
        )
        .expect("config");
        let state = dir.path().join("state");
        let credentials = dir.path().join("credentials");
        std::fs::create_dir_all(&credentials).expect("credentials dir");
        let (mut env, credential) = unit_settings(&state);
        std::fs::write(
            credentials.join(credential),
            format!("[admin]\ntoken = \"{ADMIN_TOKEN}\"\n"),
        )
        .expect("credential");
        env.push((
            "CREDENTIALS_DIRECTORY".into(),
            credentials.display().to_string(),
        ));
        let data = env
            .iter()
            .find(|(k, _)| k == "LASTMILE__STORAGE__PATH")
            .map(|(_, v)| PathBuf::from(v))
            .expect("the unit names the storage path");
        let app = BinaryApp::start_configured(&data, Some(&settings), env).await;
        let (cert, key) = self_signed(dir.path());
        let nginx = start_nginx(dir.path(), app.port, &cert, &key, operators).await;
        let pem = std::fs::read(&cert).expect("cert");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            client,
            base: format!("https://localhost:{}", nginx.https),
            state,
            nginx,
            _app: app,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.expect("request through nginx")
    }
}

#[actix_web::test]
async fn behind_the_shipped_nginx_a_whole_flow_runs_over_https() {
    let site = Site::start(20).await;
    let (client, base) = (&site.client, &site.base);

    // login → create → pay → the sandbox customer pays → paid, all via TLS.
    let login: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"code": "deploy-user"}))
        .send()
        .await
        .expect("login over https")
        .json()
        .await
        .expect("login JSON");
    let token = login["token"].as_str().expect("token").to_owned();
    let created = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .json(&order_body())
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let request_id = created
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        request_id.len(),
        32,
        "nginx's $request_id reaches the service and comes back"
    );
    let order: serde_json::Value = created.json().await.expect("order");
    let id = order["id"].as_str().expect("id").to_owned();
    let pay = client
        .post(format!("{base}/api/v1/orders/{id}/pay"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("pay");
    assert!(pay.status().is_success());
    let paid_at_sandbox = client
        .post(format!("{base}/sandbox/pay/{id}"))
        .send()
        .await
        .expect("sandbox pay");
    assert!(paid_at_sandbox.status().is_success());
    let paid = eventually(Duration::from_secs(10), || {
        let (client, base, token, id) = (&client, &base, &token, &id);
        async move {
            let order: serde_json::Value = match client
                .get(format!("{base}/api/v1/orders/{id}"))
                .bearer_auth(token)
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => return false,
            };
            order["status"] == "paid"
        }
    })
    .await;
    assert!(paid, "paid through the proxy");

    // Over the body limit: refused by nginx, in the API's error body.
    let big = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .expect("big body");
    assert_eq!(big.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = big.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "payload_too_large");

    // A share code: written under the unit's state directory, served back.
    let shared = site
        .get(
            "/api/v1/share-code?scene=deploy&page=pages/index/index",
            Some(&token),
        )
        .await;
    assert_eq!(shared.status(), reqwest::StatusCode::OK, "share code");
    let url: serde_json::Value = shared.json().await.expect("share code JSON");
    let url = url["url"].as_str().expect("url").to_owned();
    let key = url.rsplit('/').next().expect("key").to_owned();
    // Beside sled it is a file of the state directory; on PostgreSQL, a row.
    assert_eq!(
        site.state.join("files").join(&key).is_file(),
        !crate::postgres::on_postgres(),
        "where the PNG lives"
    );
    let png = site.get(&format!("/files/{key}"), None).await;
    assert_eq!(png.status(), reqwest::StatusCode::OK);
    let bytes = png.bytes().await.expect("png");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG through nginx");

    // The secrets came from the systemd credential file.
    let today = site
        .get(
            "/api/v1/admin/orders?q=deploy-secret-openid",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(
        today.status(),
        reqwest::StatusCode::OK,
        "admin via credential"
    );

    // Nobody else on the machine can read the records (on PostgreSQL
    // they are the database's, and no data directory is made).
    if !crate::postgres::on_postgres() {
        use std::os::unix::fs::PermissionsExt;
        let data = site.state.join("data");
        let mode = std::fs::metadata(&data)
            .expect("data dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "data dir mode {mode:o}");
    }

    // HSTS on every answer, errors included.
    let health = site.get("/healthz", None).await;
    assert!(health
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("max-age=63072000")));

    // The access log names the admin route but not its query (openids).
    let access_log = site.nginx.access_log.clone();
    drop(site.nginx);
    let log = std::fs::read_to_string(&access_log).unwrap_or_default();
    assert!(log.contains("/api/v1/admin/orders"), "{log}");
    assert!(!log.contains("deploy-secret-openid"), "{log}");
    assert!(
        log.contains("scene=deploy"),
        "other routes keep their query"
    );
}

/// What `openssl s_client` says when it offers `args` to the site.
fn handshake(port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let agreed = said.contains("Cipher is ") && !said.contains("Cipher is (NONE)");
    (agreed, said)
}

#[actix_web::test]
async fn nginx_speaks_only_forward_secret_tls_without_session_tickets() {
    let site = Site::start(100).await;
    let port = site.nginx.https;
    for weak in ["AES128-SHA", "AES256-SHA256", "AES128-GCM-SHA256"] {
        let (agreed, said) = handshake(port, &["-tls1_2", "-cipher", weak]);
        assert!(
            !agreed,
            "TLS 1.2 with {weak} (no forward secrecy) accepted:\n{said}"
        );
    }
    let (agreed, said) = handshake(port, &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]);
    assert!(agreed, "Mozilla intermediate suite refused:\n{said}");
    assert!(
        !said.contains("TLS session ticket:"),
        "a session ticket was issued:\n{said}"
    );
    let (agreed, said) = handshake(port, &["-tls1_1"]);
    assert!(!agreed, "TLS 1.1 accepted:\n{said}");
}

#[actix_web::test]
async fn plain_http_redirects_to_the_configured_name_only() {
    let site = Site::start(100).await;
    let reply = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!(
            "http://127.0.0.1:{}/api/v1/orders?x=1",
            site.nginx.http
        ))
        .header("Host", "evil.example")
        .send()
        .await
        .expect("plain http");
    assert_eq!(reply.status(), reqwest::StatusCode::MOVED_PERMANENTLY);
    let location = reply
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        location,
        "https://lastmile.example.edu.cn/api/v1/orders?x=1"
    );
}

#[actix_web::test]
async fn the_operator_surfaces_answer_only_the_operators_networks() {
    let site = Site::start_for(100, Operators::Elsewhere).await;
    for path in ["/metrics", "/admin", "/api/v1/admin/today"] {
        let reply = site.get(path, Some(ADMIN_TOKEN)).await;
        assert_eq!(reply.status(), reqwest::StatusCode::FORBIDDEN, "{path}");
        let body: serde_json::Value = reply.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "forbidden", "{path}");
    }
    // The public API is untouched, and its own 403/401s pass through.
    assert_eq!(
        site.get("/healthz", None).await.status(),
        reqwest::StatusCode::OK
    );
    assert_eq!(
        site.get("/api/v1/orders", None).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );

    // As shipped, this machine is an operator: the same calls go through.
    let site = Site::start(100).await;
    assert_eq!(
        site.get("/metrics", None).await.status(),
        reqwest::StatusCode::OK
    );
    assert_eq!(
        site.get("/api/v1/admin/today", Some(ADMIN_TOKEN))
            .await
            .status(),
        reqwest::StatusCode::OK
    );
}

#[actix_web::test]
async fn stopping_nginx_leaves_no_process_behind() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = self_signed(dir.path());
    let nginx = start_nginx(dir.path(), free_port(), &cert, &key, Operators::AsShipped).await;
    let master = nginx.child.id();
    let workers = nginx.workers();
    assert!(!workers.is_empty(), "nginx runs workers");
    drop(nginx);
    for pid in workers.iter().chain([&master]) {
        assert!(!running(*pid), "nginx process {pid} is still running");
    }
}

#[actix_web::test]
async fn a_forged_forwarded_for_does_not_reach_the_rate_limiter_through_nginx() {
    let site = Site::start(3).await;
    let (client, base) = (&site.client, &site.base);

    // Each request claims another address; nginx overwrites the header with
    // the real one, so they all share the real client's bucket.
    let mut limited = 0;
    for i in 0..10 {
        let res = client
            .get(format!("{base}/api/v1/orders"))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .send()
            .await
            .expect("request");
        if res.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(
        limited >= 5,
        "forged addresses split the bucket: {limited} limited"
    );
}

/// The shipped unit with the binary built here in place of
/// /usr/local/bin/lastmile, in a temp dir.
fn unit_copy(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/lastmile.service"
    ))
    .expect("config/lastmile.service");
    let copy = dir.join("lastmile.service");
    let unit = unit.replace("/usr/local/bin/lastmile", env!("CARGO_BIN_EXE_lastmile"));
    std::fs::write(&copy, unit).expect("write unit");
    copy
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_shipped_systemd_unit_verifies() {
    ensure_tool("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit_copy(dir.path()))
        .output()
        .expect("systemd-analyze runs");
    let said = said(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("lastmile.service"),
        "warnings about the unit: {said}"
    );
}

#[test]
fn the_shipped_unit_is_rated_2_5_or_better_by_systemd_analyze_security() {
    ensure_tool("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit_copy(dir.path()))
        .output()
        .expect("systemd-analyze runs");
    let said = said(&out);
    let exposure: f64 = said
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for lastmile.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{said}"));
    assert!(exposure <= 2.5, "exposure {exposure}:\n{said}");
    // What the rating does not weigh but the records need.
    let unit = std::fs::read_to_string(dir.path().join("lastmile.service")).expect("unit");
    for directive in [
        "UMask=0077",
        "StateDirectoryMode=0700",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(directive), "{directive} missing");
    }
    // Everything the service writes lies under its state directory.
    let (env, _) = unit_settings(Path::new("/var/lib/lastmile"));
    for key in ["LASTMILE__STORAGE__PATH", "LASTMILE__OBJECTS__LOCAL_DIR"] {
        let value = env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert!(
            value.is_some_and(|v| v.starts_with("/var/lib/lastmile/")),
            "{key} is not under the state directory: {value:?}"
        );
    }
}

/// A PNG of random pixels (which do not compress) of about `bytes`.
fn noisy_png(bytes: usize) -> Vec<u8> {
    use rand::RngCore;
    let side = ((bytes / 3) as f64).sqrt() as u32;
    let mut pixels = vec![0u8; (side * side * 3) as usize];
    rand::thread_rng().fill_bytes(&mut pixels);
    let img = image::RgbImage::from_raw(side, side, pixels).expect("pixels");
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

#[actix_web::test]
async fn a_photo_of_one_and_a_half_mib_goes_through_nginx_and_one_over_two_does_not() {
    let site = Site::start(20).await;
    let (client, base) = (&site.client, &site.base);
    let login: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"code": "deploy-photographer"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login JSON");
    let token = login["token"].as_str().expect("token").to_owned();
    let upload = |body: Vec<u8>| {
        client
            .post(format!("{base}/api/v1/uploads"))
            .bearer_auth(&token)
            .header("Content-Type", "image/png")
            .body(body)
            .send()
    };
    let photo = noisy_png(3 * 1024 * 1024 / 2);
    assert!(photo.len() > 1_500_000 && photo.len() < 2 * 1024 * 1024);
    let stored = upload(photo.clone()).await.expect("upload");
    assert_eq!(stored.status(), reqwest::StatusCode::CREATED);
    let stored: serde_json::Value = stored.json().await.expect("upload JSON");
    let id = stored["id"].as_str().expect("id");
    let back = site
        .get(&format!("/api/v1/uploads/{id}"), Some(&token))
        .await;
    assert_eq!(back.status(), reqwest::StatusCode::OK);
    assert_eq!(back.bytes().await.expect("photo").len(), photo.len());

    let too_big = upload(vec![0u8; 2 * 1024 * 1024 + 1]).await.expect("big");
    assert_eq!(too_big.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = too_big.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Every other route keeps its 64 KiB.
    let big = client
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .expect("big order");
    assert_eq!(big.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
}
