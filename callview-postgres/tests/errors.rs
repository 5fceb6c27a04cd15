//! Errors are clear, and never show the password.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callview_core::store::ConversationQuery;
use callview_core::{Store, StoreError};
use callview_postgres::{testing, PostgresOptions, PostgresStore};
use sqlx::{Connection, PgConnection};

const SECRET: &str = "Sup3rS3cretPw";

/// Everything `tracing` prints (every level) while `f` runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn subscriber(captured: &Captured) -> impl tracing::Subscriber + Send + Sync {
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish()
}

/// Every way an error can be printed.
fn every_rendering(error: &StoreError) -> String {
    let mut text = format!("{error}\n{error:?}\n{error:#?}\n");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    text
}

fn with_password(url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_password(Some(SECRET)).unwrap();
    url.to_string()
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error_without_the_password() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&captured));
    let options = PostgresOptions::new(format!("postgres://app:{SECRET}@127.0.0.1:1/callview"))
        .acquire_timeout(Duration::from_secs(2));
    assert!(!format!("{options:?}").contains(SECRET));
    let error = PostgresStore::connect_with(options).await.unwrap_err();
    let text = every_rendering(&error);
    eprintln!("{error}");
    assert!(matches!(error, StoreError::Backend { .. }), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        error
            .to_string()
            .contains("could not connect to postgres://app:***@127.0.0.1:1/callview"),
        "{error}"
    );
    assert!(!captured.text().contains(SECRET), "{}", captured.text());
}

#[tokio::test]
async fn an_invalid_url_is_reported_redacted() {
    for url in [
        format!("postgres://app:{SECRET}@db:notaport/callview"),
        format!("postgres://app:{SECRET}@db/callview?sslmode=sometimes"),
    ] {
        let error = PostgresStore::connect(&url).await.unwrap_err();
        let text = every_rendering(&error);
        eprintln!("{error}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("***"), "{text}");
    }
}

#[tokio::test]
async fn a_connected_store_never_shows_the_password() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(subscriber(&captured));
    let url = testing::fresh_database_url().await;
    // The test server trusts local connections: the password is sent but not checked.
    let url = with_password(&url);
    let options = PostgresOptions::new(&url).max_connections(2);
    let store = PostgresStore::connect_with(options.clone()).await.unwrap();
    store.health().await.unwrap();
    assert!(store.try_lock_sync().await.unwrap());
    store.unlock_sync().await.unwrap();

    let debug = format!("{store:?} {store:#?} {options:?} {options:#?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains(":***@"), "{debug}");
    assert!(store.redacted_url().contains(":***@"));

    // After the pool is closed every call fails with a clear, redacted error.
    store.close().await;
    let error = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap_err();
    let text = every_rendering(&error);
    eprintln!("{error}");
    assert!(matches!(error, StoreError::Backend { .. }), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        error
            .to_string()
            .contains("listing conversations on postgres://postgres:***@"),
        "{error}"
    );
    assert!(!captured.text().contains(SECRET), "{}", captured.text());
}

#[tokio::test]
async fn a_database_that_goes_away_gives_a_backend_error() {
    let url = testing::fresh_database_url().await;
    let options = PostgresOptions::new(with_password(&url))
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2));
    let store = PostgresStore::connect_with(options).await.unwrap();
    store.counts().await.unwrap();

    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let t = std::time::Instant::now();
    let mut admin = PgConnection::connect(&testing::admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    eprintln!("dropped after {:?}", t.elapsed());

    let t = std::time::Instant::now();
    let error = store.counts().await.unwrap_err();
    eprintln!("counts failed after {:?}", t.elapsed());
    let text = every_rendering(&error);
    eprintln!("{error}");
    assert!(matches!(error, StoreError::Backend { .. }), "{text}");
    assert!(
        error
            .to_string()
            .starts_with("database error: counting rows on postgres://postgres:***@"),
        "{error}"
    );
    assert!(!text.contains(SECRET), "{text}");
    let t = std::time::Instant::now();
    let error = store.try_lock_sync().await.unwrap_err();
    eprintln!("lock failed after {:?}: {error}", t.elapsed());
    assert!(!every_rendering(&error).contains(SECRET));
}

/// Refuses (or allows again) new connections to `db` and ends the open
/// ones, as a database that went away would.
async fn set_reachable(db: &str, reachable: bool) {
    let mut admin = PgConnection::connect(&testing::admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS {reachable}"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    if !reachable {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(db)
        .execute(&mut admin)
        .await
        .unwrap();
    }
    admin.close().await.unwrap();
}

#[tokio::test]
async fn health_fails_while_the_database_is_away_and_recovers() {
    let store = testing::fresh_store().await;
    let db: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.health().await.unwrap();
    let schema = store.schema_status().await.unwrap().unwrap();
    assert!(schema.is_current(), "{schema:?}");
    let pool = store.pool_status().unwrap();
    assert_eq!(pool.max, 4);
    assert!(pool.idle + pool.in_use >= 1, "{pool:?}");

    set_reachable(&db, false).await;
    let err = store.health().await.unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    assert!(store.schema_status().await.is_err());
    set_reachable(&db, true).await;
    store.health().await.unwrap();

    // A migration the database does not record is named.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 3")
        .execute(store.pool())
        .await
        .unwrap();
    let schema = store.schema_status().await.unwrap().unwrap();
    assert_eq!(schema.missing, vec![3]);
    assert!(!schema.is_current());
}
