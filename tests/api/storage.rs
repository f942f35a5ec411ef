//! The repositories' contract, one test body on each engine: what a write
//! returns, what a read sees, what a commit makes durable (a store opened
//! again on the same data answers the same).

use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;
use lastmile_actors::domain::{
    Block, ChinaDay, CourierProfile, ImageType, MessageKind, ObjectKey, OpenId, OperatorName,
    OperatorRecord, OrderId, OutboxEntry, PhoneNumber, PooledId, Review, Role, Session,
    StoredObject, StoredToken, Upload, UploadId, Via, Visibility,
};
use lastmile_actors::storage::postgres::PgStore;
use lastmile_actors::storage::{
    CourierRepo, Engine, FormIdRepo, LedgerRepo, ObjectRepo, OperatorRepo, OutboxRepo, SessionRepo,
    ShareCodeRepo, TokenRepo, UploadRepo,
};
use time::OffsetDateTime;

/// A store on one engine, reopenable on the same data.
enum Store {
    Sled(Engine, tempfile::TempDir),
    Postgres(PgStore, String),
}

impl Store {
    fn sled() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let engine = Engine::sled(&dir.path().join("db"), Duration::from_millis(1)).expect("open");
        Store::Sled(engine, dir)
    }

    fn postgres() -> Self {
        let url = crate::postgres::fresh_database();
        Store::Postgres(PgStore::open(&url, 4).expect("open"), url)
    }

    /// The same data, opened again (everything committed is there).
    fn reopen(self) -> Self {
        match self {
            Store::Sled(engine, dir) => {
                drop(engine);
                let engine =
                    Engine::sled(&dir.path().join("db"), Duration::from_millis(1)).expect("reopen");
                Store::Sled(engine, dir)
            }
            Store::Postgres(store, url) => {
                drop(store);
                Store::Postgres(PgStore::open(&url, 4).expect("reopen"), url)
            }
        }
    }
}

/// Each repository, from whichever engine the store runs on.
macro_rules! repositories {
    ($($name:ident -> $repo:ident = $getter:ident;)*) => {
        impl Store {
            $(fn $name(&self) -> Arc<dyn $repo> {
                match self {
                    Store::Sled(e, _) => e.$getter(),
                    Store::Postgres(p, _) => Arc::new(p.$getter()),
                }
            })*
        }
    };
}

repositories! {
    sessions -> SessionRepo = session_repo;
    operators -> OperatorRepo = operator_repo;
    couriers -> CourierRepo = courier_repo;
    tokens -> TokenRepo = token_repo;
    share_codes -> ShareCodeRepo = share_code_repo;
    uploads -> UploadRepo = upload_repo;
    form_ids -> FormIdRepo = formid_repo;
    ledger -> LedgerRepo = ledger_repo;
    outbox -> OutboxRepo = outbox_repo;
}

impl Store {
    /// The whole store, for a copy.
    fn dump(&self) -> Box<dyn lastmile_actors::storage::copy::Dump> {
        match self {
            Store::Sled(e, dir) => e.dump(&dir.path().join("files")),
            Store::Postgres(p, _) => {
                Box::new(lastmile_actors::storage::postgres::PgDump::new(p.clone()))
            }
        }
    }

    /// An empty store on the other engine.
    fn other(&self) -> Self {
        match self {
            Store::Sled(..) => Store::postgres(),
            Store::Postgres(..) => Store::sled(),
        }
    }

    /// Local objects: files beside sled (public ones in `files/`), rows in
    /// PostgreSQL.
    fn objects(&self) -> Arc<dyn ObjectRepo> {
        match self {
            Store::Sled(e, dir) => e.object_repo(&dir.path().join("files")),
            Store::Postgres(p, _) => Arc::new(p.object_repo()),
        }
    }
}

/// One test body, a test on each engine.
macro_rules! on_both_engines {
    ($($test:ident),* $(,)?) => {
        mod sled {
            $(#[test]
            fn $test() {
                super::$test(super::Store::sled());
            })*
        }
        mod postgres {
            $(#[test]
            fn $test() {
                super::$test(super::Store::postgres());
            })*
        }
    };
}

on_both_engines!(
    sessions_and_blocks_are_kept_and_expired_ones_swept,
    operators_and_couriers_are_kept_with_their_counts,
    the_token_share_codes_and_uploads_are_kept,
    a_users_pooled_ids_are_capped_used_up_and_swept,
    the_outbox_keeps_its_order_until_entries_are_removed,
    postings_move_balances_and_write_statements_day_lines_and_rates,
    objects_are_kept_per_visibility_with_their_bytes,
    a_store_copies_into_the_other_engine_once,
);

fn openid(s: &str) -> OpenId {
    OpenId::parse(s).expect("openid")
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("time")
}

fn sessions_and_blocks_are_kept_and_expired_ones_swept(store: Store) {
    let repo = store.sessions();
    let (live, old) = ([1u8; 32], [2u8; 32]);
    let session = |unix| Session {
        openid: openid("oSESSION"),
        expires_at: at(unix),
    };
    repo.put_session(&live, &session(2_000_000_000))
        .expect("put");
    repo.put_session(&old, &session(1_000_000_000))
        .expect("put");
    // A staged write reads back at once.
    assert_eq!(
        repo.get_session(&live).expect("get"),
        Some(session(2_000_000_000))
    );
    let block = Block {
        reason: "spam".into(),
        at: at(1_764_000_000),
    };
    repo.put_block(&openid("oBLOCKED"), &block).expect("block");
    repo.put_block(&openid("oUNBLOCKED"), &block)
        .expect("block");
    assert!(repo.remove_block(&openid("oUNBLOCKED")).expect("unblock"));
    assert!(!repo.remove_block(&openid("oNEVER")).expect("unblock"));
    block_on(repo.commit()).expect("commit");
    drop(repo);

    let store = store.reopen();
    let repo = store.sessions();
    assert_eq!(
        repo.remove_expired_sessions(at(1_500_000_000))
            .expect("sweep"),
        1
    );
    assert_eq!(repo.get_session(&old).expect("get"), None);
    assert_eq!(
        repo.get_session(&live).expect("get"),
        Some(session(2_000_000_000))
    );
    assert_eq!(
        repo.all_blocks().expect("blocks"),
        vec![(openid("oBLOCKED"), block)]
    );
}

fn courier(name: &str) -> CourierProfile {
    CourierProfile {
        openid: openid(&format!("o{name}")),
        name: name.into(),
        phone: PhoneNumber::parse("13800138000").expect("phone"),
        student_no: None,
        card_photo: None,
        review: Review::Approved,
        reason: None,
        suspended_until: None,
        applied_at: at(1_764_000_000),
        name_flagged: false,
        campus: Some(lastmile_actors::domain::CampusId::parse("east").expect("campus")),
    }
}

fn operators_and_couriers_are_kept_with_their_counts(store: Store) {
    let operator = OperatorRecord {
        name: OperatorName::parse("alice").expect("name"),
        role: Role::Finance,
        campuses: vec!["main".into()],
        token_hash: [7; 32],
        created_at: at(1_764_000_000),
        revoked_at: None,
    };
    let operators = store.operators();
    operators.put_operator(&operator).expect("put");
    let couriers = store.couriers();
    couriers.put_courier(&courier("COURIERB")).expect("put");
    couriers.put_courier(&courier("COURIERA")).expect("put");
    let day = ChinaDay::of(at(1_764_000_000));
    assert_eq!(
        couriers
            .count_release(&openid("oCOURIERA"), day)
            .expect("count"),
        1
    );
    assert_eq!(
        couriers
            .count_release(&openid("oCOURIERA"), day)
            .expect("count"),
        2
    );
    block_on(couriers.commit()).expect("commit");
    block_on(operators.commit()).expect("commit");
    drop((couriers, operators));

    let store = store.reopen();
    assert_eq!(
        store.operators().all_operators().expect("all"),
        vec![operator]
    );
    let couriers = store.couriers();
    let all: Vec<String> = couriers
        .all_couriers()
        .expect("all")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(all, ["COURIERA", "COURIERB"]);
    assert_eq!(
        couriers.get_courier(&openid("oCOURIERA")).expect("get"),
        Some(courier("COURIERA"))
    );
    assert_eq!(
        couriers.releases_on(&openid("oCOURIERA"), day).expect("n"),
        2
    );
    assert_eq!(
        couriers.releases_on(&openid("oCOURIERB"), day).expect("n"),
        0
    );
}

fn the_token_share_codes_and_uploads_are_kept(store: Store) {
    let token = StoredToken {
        value: "TOKEN".into(),
        expires_at: 1_764_007_200,
    };
    let tokens = store.tokens();
    assert_eq!(tokens.get_access_token().expect("get"), None);
    tokens.put_access_token(&token).expect("put");
    let codes = store.share_codes();
    codes
        .put_share_code("o=1", "pages/index", "https://cdn/1.png")
        .expect("put");
    let upload = Upload {
        id: UploadId::parse("U0123456789ABCDEFGHIJKLMNOPQRSTU").expect("id"),
        owner: openid("oUPLOADER"),
        image: ImageType::Jpeg,
        size: 1_024,
        width: 64,
        height: 48,
        order: Some(OrderId::parse("ORDER1").expect("order")),
        created_at: at(1_764_000_000),
    };
    let uploads = store.uploads();
    uploads.put_upload(&upload).expect("put");
    let day = ChinaDay::of(at(1_764_000_000));
    assert_eq!(uploads.count_upload(&upload.owner, day).expect("count"), 1);
    // Each repository's commit covers the writes made through it.
    for repo in [tokens.commit(), codes.commit(), uploads.commit()] {
        block_on(repo).expect("commit");
    }
    drop((tokens, codes, uploads));

    let store = store.reopen();
    assert_eq!(store.tokens().get_access_token().expect("get"), Some(token));
    let codes = store.share_codes();
    assert_eq!(
        codes
            .get_share_code("o=1", "pages/index")
            .expect("get")
            .as_deref(),
        Some("https://cdn/1.png")
    );
    assert_eq!(
        codes.get_share_code("o=1", "pages/other").expect("get"),
        None
    );
    let uploads = store.uploads();
    assert_eq!(
        uploads.get_upload(&upload.id).expect("get"),
        Some(upload.clone())
    );
    assert_eq!(uploads.uploads_on(&upload.owner, day).expect("n"), 1);
}

fn a_users_pooled_ids_are_capped_used_up_and_swept(store: Store) {
    let repo = store.form_ids();
    let user = openid("oPOOLED");
    let pooled = |value: &str, uses_left| PooledId {
        value: value.into(),
        uses_left,
    };
    // Keeps the latest-expiring two.
    repo.pool_id(&user, 3_000, &pooled("late", 2), 2)
        .expect("pool");
    repo.pool_id(&user, 1_000, &pooled("early", 1), 2)
        .expect("pool");
    repo.pool_id(&user, 2_000, &pooled("middle", 1), 2)
        .expect("pool");
    assert_eq!(repo.pooled_count(&user), 2);
    // The earliest-expiring one still valid goes first; used up, it goes.
    assert_eq!(
        repo.take_pooled_id(&user, 1_500).expect("take").as_deref(),
        Some("middle")
    );
    assert_eq!(
        repo.take_pooled_id(&user, 1_500).expect("take").as_deref(),
        Some("late")
    );
    assert_eq!(repo.pooled_count(&user), 1);
    repo.add_grants(&user, "TPL", 2).expect("grant");
    assert!(repo.take_grant(&user, "TPL").expect("take"));
    block_on(repo.commit()).expect("commit");
    drop(repo);

    let store = store.reopen();
    let repo = store.form_ids();
    assert!(repo.take_grant(&user, "TPL").expect("take"));
    assert!(!repo.take_grant(&user, "TPL").expect("none left"));
    assert_eq!(repo.prune_expired_ids(3_000).expect("prune"), 1);
    assert_eq!(repo.take_pooled_id(&user, 0).expect("take"), None);
}

fn the_outbox_keeps_its_order_until_entries_are_removed(store: Store) {
    let repo = store.outbox();
    let entry = |id| OutboxEntry {
        id,
        order_id: OrderId::parse("ORDER1").expect("id"),
        to: openid("oCUSTOMER"),
        kind: MessageKind::Delivered,
        created_at_ms: 1_764_000_000_000,
        attempts: 0,
        next_attempt_ms: 1_764_000_000_000,
        via: Some(Via::Template("form-1".into())),
    };
    for id in [30, 10, 20] {
        repo.put_outbox(&entry(id)).expect("put");
    }
    let mut retried = entry(10);
    retried.attempts = 3;
    repo.put_outbox(&retried).expect("rewrite");
    repo.remove_outbox(20).expect("remove");
    block_on(repo.commit()).expect("commit");
    drop(repo);

    let store = store.reopen();
    let repo = store.outbox();
    assert_eq!(repo.outbox_len(), 2);
    assert_eq!(repo.outbox(10).expect("read"), vec![retried, entry(30)]);
    assert_eq!(repo.outbox(1).expect("read").len(), 1);
}

#[test]
fn nodes_starting_together_migrate_the_schema_once() {
    let url = crate::postgres::fresh_database();
    let opening: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::open(&url, 2).map(|_| ()))
        })
        .collect();
    for node in opening {
        // One process uses a store at a time: the others wait, or are told.
        match node.join().expect("thread") {
            Ok(()) | Err(lastmile_actors::storage::StorageError::InUse) => {}
            Err(e) => panic!("{e}"),
        }
    }
    // Each version once, whoever applied it.
    assert_eq!(
        crate::postgres::psql(
            &url,
            "SELECT count(*) || '/' || count(DISTINCT version) FROM lastmile_migrations"
        ),
        "4/4"
    );
}

#[test]
fn a_database_nobody_serves_is_an_error_at_open() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("postgres://lastmile:secret@127.0.0.1:{port}/lastmile");
    assert!(PgStore::open(&url, 2).is_err());
}

#[test]
fn several_hosts_are_tried_in_turn_for_the_writable_one() {
    let url = crate::postgres::fresh_database();
    let (server, database) = url
        .strip_prefix("postgres://lastmile@")
        .and_then(|rest| rest.split_once('/'))
        .expect("the harness's URL");
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let hosts = format!(
        "postgres://lastmile:secret@127.0.0.1:{nobody},{server}/{database}?target_session_attrs=read-write"
    );
    let store = PgStore::open(&hosts, 2).expect("the second host answers");
    let sessions = store.session_repo();
    let session = Session {
        openid: openid("oMULTIHOST"),
        expires_at: at(2_000_000_000),
    };
    sessions.put_session(&[9u8; 32], &session).expect("put");
    block_on(sessions.commit()).expect("committed on the writable host");
    let shown = lastmile_actors::storage::postgres::masked_url(&hosts);
    assert!(!shown.contains("secret"), "{shown}");
    assert!(
        shown.contains(&nobody.to_string()),
        "names every host: {shown}"
    );
}

fn postings_move_balances_and_write_statements_day_lines_and_rates(store: Store) {
    use lastmile_actors::domain::{Account, Commission, MoneyEvent};
    use lastmile_actors::ledger::Batch;
    let repo = store.ledger();
    let ids = repo.ids();
    let order = OrderId::parse("oLEDGER0ORDER1").expect("order");
    let courier = openid("oLEDGERCOURIER");
    let commission = Commission {
        default: 10,
        ..Commission::default()
    };
    let paid = MoneyEvent::Paid {
        order: order.clone(),
        total: 500,
        campus: None,
    };
    let completed = MoneyEvent::Completed {
        order: order.clone(),
        courier: courier.clone(),
        total: 500,
        tip: 100,
        campus: None,
    };
    let now = 1_764_000_000_000;
    let mut batch = Batch::new(repo.as_ref(), &ids);
    assert!(batch.post_told(1, &paid, &commission, now).expect("paid"));
    repo.write_postings(&batch.finish()).expect("write");
    let mut batch = Batch::new(repo.as_ref(), &ids);
    assert!(batch
        .post_told(2, &completed, &commission, now)
        .expect("completed"));
    assert!(!batch.post_told(3, &paid, &commission, now).expect("again"));
    repo.write_postings(&batch.finish()).expect("write");
    block_on(repo.commit()).expect("commit");
    drop(repo);

    let store = store.reopen();
    let repo = store.ledger();
    let available = Account::Available(courier.clone());
    // 500 paid, 100 of it a tip: 10 % of 400 to the platform.
    assert_eq!(repo.balance(&available).expect("balance"), 460);
    assert_eq!(repo.balance(&Account::Platform).expect("balance"), 40);
    assert_eq!(
        repo.balance(&Account::Escrow(order.clone()))
            .expect("escrow"),
        0
    );
    let mut balances = repo.balances().expect("balances");
    balances.sort();
    assert_eq!(
        balances,
        vec![
            (Account::Clearing, -500),
            (Account::Platform, 40),
            (available.clone(), 460)
        ]
    );
    assert_eq!(repo.journal().expect("journal").postings, 2);
    let lines = repo.statement(&available, None, 10).expect("statement");
    assert_eq!(
        lines.iter().map(|l| l.amount).collect::<Vec<_>>(),
        vec![460]
    );
    assert_eq!(
        repo.rates_of(std::slice::from_ref(&order)).expect("rates"),
        vec![Some(10)]
    );
    assert!(repo.is_posted("completed:oLEDGER0ORDER1").expect("posted"));
    assert!(repo.inbox(10).expect("inbox").is_empty());
    let day = repo
        .ledger_day(ChinaDay::of(at(1_764_000_000)))
        .expect("day");
    assert_eq!(day.len(), 2, "{day:?}");
}

#[test]
fn a_database_unreachable_at_start_exits_2_naming_its_url_with_the_password_masked() {
    let dir = tempfile::tempdir().expect("tmp");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("postgres://lastmile:hunter2secret@127.0.0.1:{port}/lastmile");
    let line = crate::helpers::refuses_to_start(
        &dir.path().join("data"),
        &[],
        &[
            ("LASTMILE__STORAGE__ENGINE", "postgres".into()),
            ("LASTMILE__STORAGE__POSTGRES__URL", url),
        ],
        "no database",
    );
    assert!(
        line.contains(&format!(
            "storage.postgres.url = postgres://lastmile:***@127.0.0.1:{port}/lastmile"
        )),
        "{line}"
    );
    assert!(!line.contains("hunter2secret"), "{line}");
}

fn objects_are_kept_per_visibility_with_their_bytes(store: Store) {
    let object = |visibility, key: &str, content_type: &str, bytes: &[u8]| StoredObject {
        key: ObjectKey::parse(key).expect("key"),
        visibility,
        content_type: content_type.into(),
        bytes: bytes.to_vec(),
    };
    let share = object(
        Visibility::Public,
        "wxacode-1.png",
        "image/png",
        b"\x89PNG one",
    );
    // The same key once per visibility: a photo never shadows a share image.
    let photo = object(
        Visibility::Private,
        "wxacode-1.png",
        "image/png",
        b"\x89PNG two",
    );
    let card = object(
        Visibility::Private,
        "card-7.jpg",
        "image/jpeg",
        &[0xff, 0xd8, 0],
    );
    let repo = store.objects();
    for o in [&share, &photo, &card] {
        repo.put_object(o).expect("put");
    }
    block_on(repo.commit()).expect("commit");
    let replaced = object(
        Visibility::Public,
        "wxacode-1.png",
        "image/png",
        b"\x89PNG new",
    );
    repo.put_object(&replaced).expect("replace");
    block_on(repo.commit()).expect("commit");

    let store = store.reopen();
    let repo = store.objects();
    let get = |o: &StoredObject| repo.get_object(o.visibility, &o.key).expect("get");
    assert_eq!(get(&share), Some(replaced.clone()));
    assert_eq!(get(&photo), Some(photo.clone()));
    assert_eq!(get(&card), Some(card.clone()));
    let missing = ObjectKey::parse("none.png").expect("key");
    assert_eq!(
        repo.get_object(Visibility::Public, &missing).expect("get"),
        None
    );
    assert_eq!(
        repo.object_keys().expect("keys"),
        vec![
            (Visibility::Public, share.key.clone()),
            (Visibility::Private, card.key.clone()),
            (Visibility::Private, photo.key.clone()),
        ]
    );
}

fn a_store_copies_into_the_other_engine_once(store: Store) {
    use lastmile_actors::domain::{Account, Commission, MoneyEvent};
    use lastmile_actors::ledger::Batch;
    use lastmile_actors::storage::copy::{copy, Kind};
    let repo = store.ledger();
    let ids = repo.ids();
    let order = OrderId::parse("oCOPY00ORDER1").expect("order");
    let courier = openid("oCOPYCOURIER");
    let commission = Commission {
        default: 10,
        ..Commission::default()
    };
    let events = [
        MoneyEvent::Paid {
            order: order.clone(),
            total: 500,
            campus: None,
        },
        MoneyEvent::Completed {
            order: order.clone(),
            courier: courier.clone(),
            total: 500,
            tip: 100,
            campus: None,
        },
    ];
    for (seq, event) in (1..).zip(&events) {
        let mut batch = Batch::new(repo.as_ref(), &ids);
        assert!(batch
            .post_told(seq, event, &commission, 1_764_000_000_000)
            .expect("post"));
        repo.write_postings(&batch.finish()).expect("write");
    }
    let session = Session {
        openid: openid("oCOPYSESSION"),
        expires_at: at(2_000_000_000),
    };
    let sessions = store.sessions();
    sessions.put_session(&[7u8; 32], &session).expect("session");
    let photo = StoredObject {
        key: ObjectKey::parse("U1.jpg").expect("key"),
        visibility: Visibility::Private,
        content_type: "image/jpeg".into(),
        bytes: vec![0xff, 0xd8, 1, 2, 3],
    };
    let objects = store.objects();
    objects.put_object(&photo).expect("object");
    // Each repository commits its own writes (on PostgreSQL, its connection's).
    for committing in [repo.commit(), sessions.commit(), objects.commit()] {
        block_on(committing).expect("commit");
    }

    let target = store.other();
    let first = copy(
        store.dump().as_ref(),
        target.dump().as_ref(),
        target.ledger().as_ref(),
    )
    .expect("copy");
    assert!(first.differences().is_empty(), "{:?}", first.differences());
    let written = |kind: Kind| {
        first
            .kinds
            .iter()
            .find(|k| k.kind == kind)
            .map(|k| k.written)
    };
    // The completion's key sorts before the payment's: both still land.
    assert_eq!(written(Kind::Postings), Some(2));
    assert_eq!(written(Kind::Sessions), Some(1));
    assert_eq!(written(Kind::Objects), Some(1));
    assert!(first.ledger.balanced);
    let ledger = target.ledger();
    assert_eq!(
        ledger
            .balance(&Account::Available(courier.clone()))
            .expect("balance"),
        460
    );
    assert_eq!(
        target.sessions().get_session(&[7u8; 32]).expect("get"),
        Some(session)
    );
    assert_eq!(
        target
            .objects()
            .get_object(Visibility::Private, &photo.key)
            .expect("get"),
        Some(photo)
    );

    let again = copy(
        store.dump().as_ref(),
        target.dump().as_ref(),
        target.ledger().as_ref(),
    )
    .expect("copy again");
    assert!(
        again.kinds.iter().all(|k| k.written == 0),
        "{:?}",
        again.kinds
    );
    assert_eq!(
        ledger
            .balance(&Account::Available(courier))
            .expect("balance"),
        460,
        "nothing posted twice"
    );
}
