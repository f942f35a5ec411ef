//! The access_token refresher through its public handle.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::join_all;
use lastmile_actors::auth::token::Tokens;
use lastmile_actors::wechat::WeChatError;

use crate::helpers::{eventually, spawn_app};

#[actix_web::test]
async fn a_hundred_concurrent_users_cause_one_refresh() {
    let app = spawn_app().await;
    let tokens = &app.state.tokens;
    let all = join_all((0..100).map(|_| tokens.get())).await;
    let first = all[0].as_ref().expect("token").clone();
    assert!(all.iter().all(|t| t.as_ref().ok() == Some(&first)));
    assert_eq!(app.wechat.token_calls(), 1);
}

#[actix_web::test]
async fn fifty_invalidations_of_the_same_stale_token_refresh_once() {
    let app = spawn_app().await;
    let tokens = &app.state.tokens;
    let stale = tokens.get().await.expect("token");
    join_all((0..50).map(|_| tokens.invalidate(stale.clone()))).await;
    let fresh = join_all((0..50).map(|_| tokens.get())).await;
    assert_eq!(
        app.wechat.token_calls(),
        2,
        "one refresh for the whole storm"
    );
    assert!(fresh.iter().all(|t| t.as_ref().is_ok_and(|t| *t != stale)));
    // An invalidation naming a token that is no longer current does nothing.
    tokens.invalidate(stale).await;
    tokens.get().await.expect("token");
    assert_eq!(app.wechat.token_calls(), 2);
}

#[actix_web::test]
async fn a_token_about_to_expire_is_refreshed_before_use() {
    let app = spawn_app().await;
    // Lives 301 s: usable for one second before the 300 s margin.
    app.wechat.set_token_lifetime(301);
    let first = app.state.tokens.get().await.expect("token");
    app.wechat.set_token_lifetime(7200);
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let second = app.state.tokens.get().await.expect("token");
    assert_ne!(first, second);
}

#[actix_web::test]
async fn an_invalid_token_answer_refreshes_once_and_retries_once() {
    let app = spawn_app().await;
    let tokens = &app.state.tokens;
    let first = tokens.get().await.expect("token");
    let attempts = AtomicU32::new(0);
    let result = tokens
        .call(|token| {
            attempts.fetch_add(1, Ordering::SeqCst);
            let stale = token == first;
            async move {
                if stale {
                    Err(WeChatError::Api {
                        errcode: 40001,
                        errmsg: "invalid credential".into(),
                    })
                } else {
                    Ok(token)
                }
            }
        })
        .await
        .expect("succeeds after one refresh");
    assert_ne!(result, first);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(app.wechat.token_calls(), 2);

    // Never a loop: a call that keeps failing is tried twice, not forever.
    attempts.store(0, Ordering::SeqCst);
    let always = tokens
        .call(|_| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<(), _>(WeChatError::Api {
                    errcode: 42001,
                    errmsg: "expired".into(),
                })
            }
        })
        .await;
    assert!(always.is_err());
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

#[actix_web::test]
async fn wechat_down_backs_off_without_a_hot_loop_and_recovers() {
    let app = spawn_app().await;
    app.wechat.set_down(true);
    for _ in 0..50 {
        assert!(app.state.tokens.get().await.is_err());
    }
    assert!(
        app.wechat.token_calls() <= 2,
        "backing off, not hammering: {}",
        app.wechat.token_calls()
    );
    app.wechat.set_down(false);
    let recovered = eventually(Duration::from_secs(10), || async {
        app.state.tokens.get().await.is_ok()
    })
    .await;
    assert!(recovered);
    assert!(
        app.wechat.token_calls() < 15,
        "capped exponential retries: {}",
        app.wechat.token_calls()
    );
}

#[actix_web::test]
async fn the_token_is_persisted_so_a_restart_does_not_refresh() {
    let app = spawn_app().await;
    let token = app.state.tokens.get().await.expect("token");
    // A second refresher on the same store stands for the restarted process.
    let restarted = Tokens::start(app.wechat.clone(), app.store.token_repo(), true);
    assert_eq!(restarted.get().await.expect("token"), token);
    assert_eq!(app.wechat.token_calls(), 1);
}
