//! Conformance tests of API tokens ([`crate::access`]): creation, listing,
//! names taken once, authentication by hash of active tokens only, the
//! last use written at most once a minute, revocation, and a revocation
//! made through one handle refused at once through another (two processes
//! sharing one database).

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration};

use crate::access::{NewToken, Role, TokenHash, TokenRecord, TokenSecret, TokenStatus};
use crate::store::{Store, StoreError};

use super::builder::{at_secs, t0};
use super::concurrency::StorePair;

fn new_token(name: &str, role: Role, expires_in: Option<Duration>) -> (TokenSecret, NewToken) {
    NewToken::generate(name, role, t0(), expires_in.map(|d| t0() + d))
        .unwrap_or_else(|e| panic!("a token named {name}: {e}"))
}

async fn create(store: &dyn Store, token: &NewToken) -> TokenRecord {
    store
        .create_token(token)
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", token.name))
}

async fn auth(
    store: &dyn Store,
    secret: &TokenSecret,
    now: DateTime<chrono::Utc>,
) -> Option<TokenRecord> {
    store
        .authenticate(&secret.hash(), now)
        .await
        .unwrap_or_else(|e| panic!("authenticate: {e}"))
}

/// Tokens are stored with their name, role, creation and expiry, listed
/// oldest first without their hashes, and found by the hash of their text.
pub async fn tokens_are_created_listed_and_found(store: Arc<dyn Store>) {
    let store = store.as_ref();
    assert!(store.tokens().await.expect("tokens").is_empty());
    let (wall_secret, wall) = new_token("wall-screen", Role::Viewer, None);
    let (alice_secret, alice) = new_token("alice", Role::Editor, Some(Duration::days(90)));
    let created = create(store, &wall).await;
    assert_eq!(
        created,
        TokenRecord {
            name: "wall-screen".into(),
            role: Role::Viewer,
            created_at: t0(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        }
    );
    let mut later = alice.clone();
    later.created_at = at_secs(1);
    later.expires_at = Some(at_secs(1) + Duration::days(90));
    create(store, &later).await;
    let (_, boss) = new_token("boss", Role::Admin, None);
    let mut boss = boss;
    boss.created_at = at_secs(2);
    create(store, &boss).await;

    let listed = store.tokens().await.expect("tokens");
    let names: Vec<_> = listed.iter().map(|t| (t.name.as_str(), t.role)).collect();
    assert_eq!(
        names,
        [
            ("wall-screen", Role::Viewer),
            ("alice", Role::Editor),
            ("boss", Role::Admin)
        ]
    );
    assert_eq!(listed[1].expires_at, Some(at_secs(1) + Duration::days(90)));

    let found = auth(store, &alice_secret, at_secs(10))
        .await
        .expect("alice's token");
    assert_eq!((found.name.as_str(), found.role), ("alice", Role::Editor));
    let found = auth(store, &wall_secret, at_secs(10))
        .await
        .expect("the wall's token");
    assert_eq!(found.name, "wall-screen");
    // Anything else opens nothing.
    for guess in [
        TokenHash::of(""),
        TokenHash::of("alice"),
        TokenHash::of(&format!("{} ", alice_secret.expose())),
        TokenHash::from_stored(alice.hash.as_str().to_uppercase()),
    ] {
        assert_eq!(
            store
                .authenticate(&guess, at_secs(10))
                .await
                .expect("authenticate"),
            None,
            "{guess:?}"
        );
    }
}

/// A name belongs to one active token: a second one is a `Conflict`; after
/// a revocation, or once the first has expired, the name can be used again
/// (the expired one is then marked revoked).
pub async fn token_names_are_taken_once(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (_, first) = new_token("alice", Role::Editor, None);
    create(store, &first).await;
    let (_, again) = new_token("alice", Role::Viewer, None);
    match store.create_token(&again).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains("alice"), "{message}"),
        other => panic!("a second active token named alice: {other:?}"),
    }
    assert_eq!(store.tokens().await.expect("tokens").len(), 1);

    // Revoked: the name is free.
    store
        .revoke_token("alice", at_secs(5))
        .await
        .expect("revoke");
    let (second_secret, mut second) = new_token("alice", Role::Viewer, Some(Duration::minutes(1)));
    second.created_at = at_secs(10);
    second.expires_at = Some(at_secs(70));
    create(store, &second).await;
    assert!(auth(store, &second_secret, at_secs(20)).await.is_some());

    // Expired: the name is free too, and the expired token stays refused.
    let (third_secret, mut third) = new_token("alice", Role::Admin, None);
    third.created_at = at_secs(100);
    create(store, &third).await;
    assert!(auth(store, &second_secret, at_secs(100)).await.is_none());
    let found = auth(store, &third_secret, at_secs(101))
        .await
        .expect("the third");
    assert_eq!(found.role, Role::Admin);

    let statuses: Vec<_> = store
        .tokens()
        .await
        .expect("tokens")
        .iter()
        .map(|t| (t.role, t.status(at_secs(101))))
        .collect();
    assert_eq!(
        statuses,
        [
            (Role::Editor, TokenStatus::Revoked),
            (Role::Viewer, TokenStatus::Revoked),
            (Role::Admin, TokenStatus::Active),
        ]
    );
}

/// Only active tokens authenticate: not once their expiry has passed, not
/// once revoked; revoking an unknown (or already revoked) name is
/// `NotFound`.
pub async fn expired_and_revoked_tokens_are_refused(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (secret, token) = new_token("temp", Role::Viewer, Some(Duration::days(1)));
    create(store, &token).await;
    let expiry = t0() + Duration::days(1);
    assert!(auth(store, &secret, expiry - Duration::seconds(1))
        .await
        .is_some());
    assert!(auth(store, &secret, expiry).await.is_none());
    assert!(auth(store, &secret, expiry + Duration::days(400))
        .await
        .is_none());

    let (secret, token) = new_token("bob", Role::Editor, None);
    create(store, &token).await;
    assert!(auth(store, &secret, at_secs(1)).await.is_some());
    let revoked = store.revoke_token("bob", at_secs(2)).await.expect("revoke");
    assert_eq!(revoked.revoked_at, Some(at_secs(2)));
    assert_eq!(revoked.status(at_secs(3)), TokenStatus::Revoked);
    assert!(auth(store, &secret, at_secs(3)).await.is_none());
    for name in ["bob", "nobody"] {
        match store.revoke_token(name, at_secs(4)).await {
            Err(StoreError::NotFound(message)) => assert!(message.contains(name), "{message}"),
            other => panic!("revoking {name}: {other:?}"),
        }
    }
    // The revoked token is still listed, as revoked.
    let listed = store.tokens().await.expect("tokens");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].revoked_at, Some(at_secs(2)));
}

/// Each use may write `last_used_at`, at most once a minute per token.
pub async fn last_use_is_written_at_most_once_a_minute(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (secret, token) = new_token("alice", Role::Editor, None);
    create(store, &token).await;
    let last_used = |name: &'static str| async move {
        store
            .tokens()
            .await
            .expect("tokens")
            .into_iter()
            .find(|t| t.name == name)
            .and_then(|t| t.last_used_at)
    };
    assert_eq!(last_used("alice").await, None);
    let found = auth(store, &secret, at_secs(10)).await.expect("alice");
    assert_eq!(found.last_used_at, Some(at_secs(10)));
    assert_eq!(last_used("alice").await, Some(at_secs(10)));
    auth(store, &secret, at_secs(69)).await.expect("alice");
    assert_eq!(
        last_used("alice").await,
        Some(at_secs(10)),
        "within the minute"
    );
    let found = auth(store, &secret, at_secs(70)).await.expect("alice");
    assert_eq!(found.last_used_at, Some(at_secs(70)));
    assert_eq!(last_used("alice").await, Some(at_secs(70)));
    // An earlier clock never moves it back.
    auth(store, &secret, at_secs(0)).await.expect("alice");
    assert_eq!(last_used("alice").await, Some(at_secs(70)));
}

/// Two handles on one database (two processes): a token created through
/// one authenticates through the other, and once revoked through the
/// other, the first refuses it on its very next call.
pub async fn tokens_revoked_in_one_process_fail_in_the_other<F, Fut>(pair: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StorePair>,
{
    let (a, b) = pair().await;
    let (secret, token) = new_token("alice", Role::Editor, None);
    create(a.as_ref(), &token).await;
    let now = t0() + Duration::minutes(5);
    assert!(
        auth(b.as_ref(), &secret, now).await.is_some(),
        "seen by the other handle"
    );
    assert!(auth(a.as_ref(), &secret, now).await.is_some());
    b.revoke_token("alice", now).await.expect("revoke");
    assert!(
        auth(a.as_ref(), &secret, now).await.is_none(),
        "revoked through the other handle"
    );
    // Created again through the second, with another text: the first
    // handle takes the new one and still refuses the old.
    let (fresh, mut again) = new_token("alice", Role::Viewer, None);
    again.created_at = now;
    create(b.as_ref(), &again).await;
    assert!(auth(a.as_ref(), &secret, now).await.is_none());
    let found = auth(a.as_ref(), &fresh, now).await.expect("the new token");
    assert_eq!(found.role, Role::Viewer);
    assert_eq!(a.tokens().await.expect("tokens").len(), 2);
}
