//! The generic store conformance suite (feature `testkit`).
//!
//! Every [`Store`] implementation runs the same tests, in the manner of
//! arrow-rs' `object_store` crate: the tests are generic `async fn`s in
//! [`conformance`] taking a fresh store, and [`conformance_tests!`](crate::conformance_tests)
//! expands into one `#[tokio::test]` per function in the backend's test
//! crate:
//!
//! ```text
//! // callview-sqlite/tests/conformance.rs
//! callview_core::conformance_tests!(callview_sqlite::SqliteStore::open_in_memory().unwrap());
//! // callview-postgres/tests/conformance.rs (an async expression works too;
//! // `testing` is behind callview-postgres' feature `testing`)
//! callview_core::conformance_tests!(callview_postgres::testing::fresh_store().await);
//! ```
//!
//! The expression is evaluated inside an `async fn` once per test (and once
//! per property-test case), so it may `.await`; its value is anything
//! [`IntoStore`] accepts (a store, an `Arc` of one, an `Arc<dyn Store>`).
//! The calling crate needs `tokio` (with the `macros` and `rt-multi-thread`
//! features) as a dev-dependency.
//!
//! The kit also holds what the tests are built from, for a backend's own
//! tests: [`MockTwilio`] (an in-memory [`crate::TwilioClient`]),
//! [`CallBuilder`], [`check_invariants`] and [`snapshot`], the [`Harness`]
//! tying a store, a mock account and a [`crate::SyncEngine`] together, and
//! the call-tree generator of the property tests ([`props`]).

use std::sync::Arc;

use crate::store::Store;

mod builder;
mod check;
pub mod concurrency;
pub mod conformance;
pub mod export;
mod harness;
pub mod media;
mod mock;
pub mod props;
pub mod stats;
pub mod texts;
pub mod tokens;

pub use builder::{
    at, at_secs, rules, sid, t0, text_sid, CallBuilder, TextBuilder, AGENT_CELL, AGENT_SIP, ALICE,
    COMPANY, CUSTOMER, CUSTOMER2, CUSTOMER2_DISPLAY, CUSTOMER_DISPLAY, DISPATCHER, UK_CUSTOMER,
    UK_CUSTOMER_DISPLAY,
};
pub use check::{
    all_conversations, all_messages, all_texts, all_thread, assert_invariants, check_invariants,
    snapshot, walk_by_cursor, CallSnapshot, ConversationSnapshot, InteractionSnapshot,
    StoreSnapshot, Violations,
};
pub use concurrency::StorePair;
pub use harness::Harness;
pub use mock::MockTwilio;

/// What [`conformance_tests!`](crate::conformance_tests) accepts as a fresh store.
pub trait IntoStore {
    /// The store as a trait object.
    fn into_store(self) -> Arc<dyn Store>;
}

impl<T: Store + 'static> IntoStore for T {
    fn into_store(self) -> Arc<dyn Store> {
        Arc::new(self)
    }
}

impl<T: Store + 'static> IntoStore for Arc<T> {
    fn into_store(self) -> Arc<dyn Store> {
        self
    }
}

impl IntoStore for Arc<dyn Store> {
    fn into_store(self) -> Arc<dyn Store> {
        self
    }
}

/// Expands into one `#[tokio::test]` per conformance test, each on a fresh
/// store made by the given expression (which may `.await`). See the
/// [module documentation](crate::testkit).
///
/// Tests taking one store are listed in [`conformance`]; the property tests
/// (`prop_*`) take a factory and run on a multi-threaded runtime.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr $(,)?) => {
        async fn __callview_conformance_fresh_store() -> ::std::sync::Arc<dyn $crate::Store> {
            $crate::testkit::IntoStore::into_store($fresh)
        }

        $crate::__conformance_store_tests!(
            __callview_conformance_fresh_store;
            empty_store_is_healthy,
            groups_calls_from_one_number,
            number_variants_share_one_conversation,
            child_legs_fold_under_their_parent,
            parent_after_children_in_the_same_batch,
            parent_after_children_in_a_later_batch,
            parent_on_a_later_page,
            parent_in_a_later_sync,
            grandchildren_fold_into_the_root,
            merged_talk_wait_and_display_status,
            status_and_duration_updates_follow,
            price_filled_in_later_updates_the_row,
            resync_changes_nothing,
            older_version_does_not_overwrite_newer,
            unknown_status_and_direction_are_kept,
            raw_twilio_record_is_kept,
            derivable_uris_are_rebuilt_on_read,
            duplicate_records_in_one_batch,
            anonymous_callers_share_one_conversation,
            internal_calls_get_an_internal_conversation,
            dispatcher_dialling_out_is_outbound,
            dispatcher_through_company_number_lands_with_customer,
            internal_root_takes_the_earliest_external_leg,
            owned_numbers_come_from_twilio,
            international_numbers_display_internationally,
            messages_newest_first_unstarted_last,
            conversations_ordered_by_activity_and_paged,
            conversations_paged_by_cursor,
            cursor_pages_combine_with_filters,
            cursor_pages_survive_writes_between_requests,
            unknown_conversation_is_not_found,
            cursors_round_trip,
            unfinished_calls_lists_non_final,
            incremental_sync_refreshes_unfinished_calls,
            load_trees_returns_whole_trees,
            load_conversations_totals_exclude,
            apply_is_all_or_nothing,
            sync_lock_is_taken_and_released,
            never_dialled_calls_are_synced,
            edits_survive_syncs_and_moves,
            stale_edits_are_refused,
            annotations_are_searchable,
            search_finds_terms_inside_every_field,
            imported_contacts_name_their_first_call,
            stuck_calls_back_off_and_are_unfollowed,
            recordings_attach_in_either_order,
            several_recordings_per_call,
            deleted_and_updated_recordings,
            transcripts_are_stored_and_searchable,
            media_versions_in_any_order,
            intelligence_failures_are_noted_not_fatal,
            unreadable_listed_recordings_are_not_deleted,
            stats_match_figures_counted_by_hand,
            stats_buckets_follow_local_time_across_dst,
            stats_of_an_empty_period_are_zero_filled,
            stats_every_bucket_size,
            stats_follow_changes_and_rebuild_the_same,
            stats_busiest_conversations_of_a_period,
            texts_and_calls_share_one_thread_in_time_order,
            a_text_creates_the_conversation_a_call_finds,
            text_status_moves_on_and_older_versions_lose,
            texts_between_owned_numbers_are_internal,
            a_conversation_keeps_its_texts_when_its_calls_move,
            sync_lists_texts_and_their_media,
            tokens_are_created_listed_and_found,
            token_names_are_taken_once,
            expired_and_revoked_tokens_are_refused,
            last_use_is_written_at_most_once_a_minute,
        );

        $crate::__conformance_factory_tests!(
            __callview_conformance_fresh_store;
            prop_order_and_batches_do_not_matter,
            prop_ingesting_twice_changes_nothing,
            prop_page_size_does_not_matter,
            prop_stale_versions_never_win,
            prop_edits_survive_syncs,
            texts_in_any_order_give_the_same_state,
        );

        $crate::__export_conformance_tests!(__callview_conformance_fresh_store);
    };
}

/// Expands into one `#[tokio::test]` per test of [`concurrency`]: several
/// writers on one database. The expression (evaluated in an `async fn`, so
/// it may `.await`) must give a [`StorePair`]: two handles opened
/// separately on one new database, as two processes would hold them.
///
/// ```text
/// // callview-sqlite/tests/concurrency.rs
/// callview_core::concurrency_tests!({
///     let path = new_file();
///     (open(&path), open(&path))
/// });
/// ```
#[macro_export]
macro_rules! concurrency_tests {
    ($pair:expr $(,)?) => {
        async fn __callview_concurrency_pair() -> $crate::testkit::StorePair {
            $pair
        }

        $crate::__conformance_factory_tests!(
            __callview_concurrency_pair;
            concurrent_writers_stay_exact,
            callback_writer_races_a_sync,
            tokens_revoked_in_one_process_fail_in_the_other,
        );
    };
}

/// Implementation detail of [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_store_tests {
    ($fresh:ident; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                $crate::testkit::conformance::$name($fresh().await).await;
            }
        )*
    };
}

/// Implementation detail of [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_factory_tests {
    ($fresh:ident; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::testkit::conformance::$name($fresh).await;
            }
        )*
    };
}
