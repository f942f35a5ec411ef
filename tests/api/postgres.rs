//! A PostgreSQL server for this test binary: Debian's, started once
//! (initdb and pg_ctl into a temporary directory, TCP on 127.0.0.1, trust
//! authentication), with a fresh database per test. As root it runs as
//! the `postgres` user (initdb refuses root). A watchdog stops it and
//! removes its directory once this test binary has exited, however it
//! ended.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::helpers::ensure_package;

/// The running server.
struct Server {
    port: u16,
    bin: PathBuf,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A URL to a new, empty database on this binary's server.
pub fn fresh_database() -> String {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(e) => panic!("PostgreSQL could not be started: {e}"),
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    let created = Command::new(server.bin.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args([
            "-U",
            "lastmile",
            "-d",
            "postgres",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(created, "database {name} could not be created");
    format!("postgres://lastmile@127.0.0.1:{}/{name}", server.port)
}

/// Connections per service in the tests: services of finished in-process
/// tests keep theirs until the binary exits, and the server has a limit.
const TEST_POOL: usize = 6;

/// The engine a test binary's tests run on (`crate::ENGINE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestEngine {
    /// A sled directory per test.
    Sled,
    /// A database per test on this binary's PostgreSQL server.
    Postgres,
}

/// True when this binary's tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    crate::ENGINE == TestEngine::Postgres
}

/// The database that stands for the data directory `data` when the tests
/// run on PostgreSQL (one per directory, so a service started again on it
/// finds its data); None on sled.
pub fn url_for(data: &Path) -> Option<String> {
    static BY_DATA: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    if !on_postgres() {
        return None;
    }
    let mut known = BY_DATA
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, url)) = known.iter().find(|(d, _)| d == data) {
        return Some(url.clone());
    }
    let url = fresh_database();
    known.push((data.to_owned(), url.clone()));
    Some(url)
}

/// The binary's settings for the store of `data` on this binary's engine.
pub fn engine_env(data: &Path) -> Vec<(String, String)> {
    match url_for(data) {
        Some(url) => vec![
            ("LASTMILE__STORAGE__ENGINE".into(), "postgres".into()),
            ("LASTMILE__STORAGE__POSTGRES__URL".into(), url),
            (
                "LASTMILE__STORAGE__POSTGRES__POOL".into(),
                TEST_POOL.to_string(),
            ),
        ],
        None => Vec::new(),
    }
}

/// Points in-process settings at the store of their `storage.path` on
/// this binary's engine.
pub fn apply_engine(settings: &mut lastmile::config::Settings) {
    if let Some(url) = url_for(&settings.storage.path) {
        settings.storage.engine = lastmile::config::EngineSetting::Postgres;
        settings.storage.postgres.url = Some(lastmile_actors::wechat::Secret::new(url));
        settings.storage.postgres.pool = TEST_POOL;
    }
}

/// Opens the store of `data` as the service would (to prepare or inspect
/// it while no service runs).
pub fn open_store(data: &Path) -> lastmile_actors::storage::Engine {
    match url_for(data) {
        Some(url) => lastmile_actors::storage::Engine::postgres(&url, 2).expect("database"),
        None => {
            lastmile_actors::storage::Engine::sled(data, std::time::Duration::ZERO).expect("store")
        }
    }
}

/// Runs `sql` on the database `url` names, through psql.
pub fn psql(url: &str, sql: &str) -> String {
    let server = SERVER
        .get()
        .and_then(|s| s.as_ref().ok())
        .expect("the server runs");
    psql_with(&server.bin, url, sql)
}

/// What `sql` prints through the `psql` of `bin` at `url`.
fn psql_with(bin: &Path, url: &str, sql: &str) -> String {
    let out = Command::new(bin.join("psql"))
        .args([url, "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Debian's newest PostgreSQL binaries, installed when missing.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("psql").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn start() -> Result<Server, String> {
    let (port, bin, _) = launch()?;
    Ok(Server { port, bin })
}

/// A server of its own in a new directory: its port, binaries and
/// directory (the watchdog stops it once this process is gone).
fn launch() -> Result<(u16, PathBuf, PathBuf), String> {
    ensure_package("postgresql", &|| binaries().is_some(), "PostgreSQL");
    let bin = binaries().ok_or("no PostgreSQL binaries")?;
    let dir = tempfile::Builder::new()
        .prefix("lastmile-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    let as_root = is_root();
    if as_root {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir))?;
    }
    run(as_postgres(as_root, &bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "lastmile",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data))?;
    let port = free_port()?;
    pg_ctl_start(&bin, &dir, port)?;
    watch(as_root, &bin, &dir);
    Ok((port, bin, dir))
}

/// Starts (again) the server in `dir` on `port`.
fn pg_ctl_start(bin: &Path, dir: &Path, port: u16) -> Result<(), String> {
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=1500 -c shared_buffers=64MB \
         -c fsync=off -c full_page_writes=off",
        dir.display()
    );
    run(as_postgres(is_root(), &bin.join("pg_ctl"))
        .args(["-w", "-t", "60", "-o", &options, "-l"])
        .arg(dir.join("log"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("start"))
}

/// A server of one test's own, to stop and start while a service uses it.
pub struct OwnServer {
    port: u16,
    bin: PathBuf,
    dir: PathBuf,
}

impl OwnServer {
    /// A new server (initdb, then started).
    pub fn start() -> Self {
        let (port, bin, dir) = launch().unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
        Self { port, bin, dir }
    }

    /// Its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://lastmile@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it as an operator would (`pg_ctl stop -m fast`: connections
    /// are cut, nothing committed is lost).
    pub fn stop(&self) {
        run(as_postgres(is_root(), &self.bin.join("pg_ctl"))
            .args(["-w", "-t", "60", "-m", "fast", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop"))
        .unwrap_or_else(|e| panic!("pg_ctl stop: {e}"));
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        pg_ctl_start(&self.bin, &self.dir, self.port).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs `sql` on its database through psql.
    pub fn psql(&self, sql: &str) -> String {
        psql_with(&self.bin, &self.url(), sql)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = as_postgres(is_root(), &self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops the server and removes its directory once this process is gone.
fn watch(as_root: bool, bin: &Path, dir: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if as_root {
        format!(
            "runuser -u postgres -- {} -D {}/data stop -m immediate",
            pg_ctl.display(),
            dir.display()
        )
    } else {
        format!(
            "{} -D {}/data stop -m immediate",
            pg_ctl.display(),
            dir.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Its own session: a Ctrl-C to the tests' process group leaves it to
    // clean up.
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn as_postgres(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
