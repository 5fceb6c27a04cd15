//! Computing the statistics' figures of calls stored before they were
//! kept (a database migrated from an earlier version, or adopted from the
//! seed's original application).

use crate::model::{fold_interactions, InteractionFacts, Plan};
use crate::store::{Store, StoreError};

/// The sync cursor a migration sets to `pending` when it finds calls
/// whose figures are not kept yet; [`ensure_built`] sets it to `done`.
pub const REBUILD_CURSOR: &str = "stats_rebuild";

/// Root calls per transaction.
const BATCH: u32 = 500;

/// Runs [`rebuild`] when a migration asked for it; returns how many
/// interactions it counted (0 when nothing was to do).
pub async fn ensure_built(store: &dyn Store) -> Result<u64, StoreError> {
    if store.read_cursor(REBUILD_CURSOR).await?.as_deref() != Some("pending") {
        return Ok(0);
    }
    tracing::info!("computing the statistics of the calls stored before they were kept");
    let counted = rebuild(store).await?;
    store.write_cursor(REBUILD_CURSOR, "done").await?;
    tracing::info!(interactions = counted, "statistics ready");
    Ok(counted)
}

/// Writes the figures of every stored interaction, by root SID, in
/// batches of one [`crate::store::IngestTx`] each: each batch reads its
/// call trees and replaces their figures in the same transaction, so it
/// is exact while syncs write (they keep the figures of the trees they
/// touch) and may run again at any time.
pub async fn rebuild(store: &dyn Store) -> Result<u64, StoreError> {
    let mut after = None;
    let mut counted = 0u64;
    loop {
        let roots = store.root_sids_page(after.as_ref(), BATCH).await?;
        let Some(last) = roots.last().cloned() else {
            return Ok(counted);
        };
        let mut tx = store.begin_ingest().await?;
        let rows = tx.load_trees(&roots).await?;
        let interactions: Vec<InteractionFacts> = fold_interactions(rows)
            .iter()
            .map(InteractionFacts::of_interaction)
            .collect();
        counted += interactions.len() as u64;
        tx.apply(Plan {
            interactions,
            ..Plan::default()
        })
        .await?;
        tx.commit().await?;
        after = Some(last);
    }
}
