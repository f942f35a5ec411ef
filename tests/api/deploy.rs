//! The deployment as shipped: real nginx (Debian's package) with
//! `config/nginx.conf` and a throwaway self-signed certificate in front of
//! the release binary, and `config/lastmile.service` checked by
//! `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{ensure_tool, eventually, free_port, order_body, BinaryApp};

/// nginx started on `config/nginx.conf`, rewritten only where a test must:
/// its ports, the certificate, the upstream port and where it writes.
struct Nginx {
    child: Child,
    https: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
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

async fn start_nginx(dir: &Path, upstream: u16, cert: &Path, key: &Path) -> Nginx {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/nginx.conf"))
            .expect("config/nginx.conf");
    let (https, http) = (free_port(), free_port());
    let path = |name: &str| dir.join(name).display().to_string();
    let conf = [
        ("pid /run/nginx.pid;", format!("pid {};", path("nginx.pid"))),
        (
            "error_log /var/log/nginx/error.log warn;",
            format!("error_log {} warn;", path("error.log")),
        ),
        (
            "access_log /var/log/nginx/access.log;",
            format!("access_log {};", path("access.log")),
        ),
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
    ]
    .iter()
    .fold(shipped, |conf, (from, to)| {
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
    let nginx = Nginx { child, https };
    let up = eventually(Duration::from_secs(10), || async {
        std::net::TcpStream::connect(("127.0.0.1", https)).is_ok()
    })
    .await;
    assert!(up, "nginx listens");
    nginx
}

/// The release binary (trusting the proxy, `rate_limit` per second)
/// behind the shipped nginx, and an HTTPS client that trusts its
/// throwaway certificate.
struct Site {
    client: reqwest::Client,
    base: String,
    // Dropped in this order: nginx, then the service, then their files.
    _nginx: Nginx,
    _app: BinaryApp,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn start(rate_limit: u32) -> Self {
        ensure_tool("nginx", "nginx");
        let dir = tempfile::tempdir().expect("tmp");
        let settings = dir.path().join("lastmile.toml");
        std::fs::write(
            &settings,
            format!("[http]\ntrusted_proxies = [\"127.0.0.1\"]\nrate_limit = {rate_limit}\n"),
        )
        .expect("config");
        let app = BinaryApp::start_with_config(&dir.path().join("data"), &settings).await;
        let (cert, key) = self_signed(dir.path());
        let nginx = start_nginx(dir.path(), app.port, &cert, &key).await;
        let pem = std::fs::read(&cert).expect("cert");
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
            .build()
            .expect("client");
        Self {
            client,
            base: format!("https://localhost:{}", nginx.https),
            _nginx: nginx,
            _app: app,
            _dir: dir,
        }
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

#[test]
fn the_shipped_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/lastmile.service"
    ))
    .expect("config/lastmile.service");
    for directive in [
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.contains(directive), "{directive} missing");
    }
    ensure_tool("systemd-analyze", "systemd");
    // The binary as built here stands in for /usr/local/bin/lastmile.
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join("lastmile.service");
    let unit = unit.replace("/usr/local/bin/lastmile", env!("CARGO_BIN_EXE_lastmile"));
    std::fs::write(&copy, unit).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("lastmile.service"),
        "warnings about the unit: {said}"
    );
}
