//! The scenarios that measure issue 17's targets (`ingest`: 1 and 2,
//! `backfill`: 3, `memory`: 4, `api`: 5 to 7, `incremental`: 8), `audio`
//! (the recording proxy) and `stats` (the dashboard's statistics). Each
//! has `run(&Options)` returning typed results, and `report(&Options)` on
//! them building the printed [`Report`](crate::Report).

pub mod api;
pub mod audio;
pub mod backfill;
pub mod incremental;
pub mod ingest;
pub mod memory;
pub mod stats;

use crate::report::Table;
use crate::timing::{rows, MethodTime};
use std::collections::BTreeMap;

/// A table of where a sync's time went.
pub(crate) fn timing_table(title: &str, timings: &BTreeMap<&'static str, MethodTime>) -> Table {
    let mut table = Table::new(title, &["method", "calls", "total ms", "ms/call"]);
    for row in rows(timings) {
        table.row(row);
    }
    table
}
