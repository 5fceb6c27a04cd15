//! Generated call records with an exact shape, for loading a store fast
//! (planned and applied batch by batch, as a sync would, without HTTP):
//! `conversations` customers, `calls` rows, one customer with `big` calls.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use callview_core::annotations::{ContactEdit, EditMeta};
use callview_core::model::ConversationLookup;
use callview_core::{
    Call, CallDirection, CallSid, CallStatus, ConversationId, Normalizer, OwnedNumbers, PartyRules,
    Store,
};
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// The business's number in the generated calls.
pub const COMPANY: &str = "+16175006181";
/// The SIP phone forwarded calls ring.
pub const AGENT: &str = "sip:agent1@acme.sip.twilio.com";
/// The account SID of the generated calls.
pub const ACCOUNT_SID: &str = "ACbe0c0000000000000000000000000001";

const AREA_CODES: [&str; 20] = [
    "212", "310", "415", "617", "978", "508", "781", "702", "305", "646", "213", "312", "404",
    "512", "720", "206", "303", "503", "602", "713",
];

/// The dataset's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shape {
    /// Customers, hence conversations.
    pub conversations: usize,
    /// Call rows in all (legs included).
    pub calls: usize,
    /// Rows of the one big conversation (customer 0).
    pub big: usize,
}

/// Customer `i`'s E.164 number (valid NANP numbers, all distinct).
pub fn customer_number(i: usize) -> String {
    let area = AREA_CODES[i % AREA_CODES.len()];
    let k = i / AREA_CODES.len();
    let exchange = 234 + k / 10_000;
    format!("+1{area}{exchange:03}{:04}", k % 10_000)
}

/// A generated call SID (`CA` + 32 hex digits, prefix `b3`).
pub fn sid(n: u64) -> CallSid {
    CallSid::new(format!("CA{:032x}", (0xb3u128 << 120) | u128::from(n)))
        .unwrap_or_else(|| unreachable!("a non-empty SID"))
}

/// The party rules for the generated calls ([`COMPANY`] is owned).
pub fn rules() -> PartyRules {
    let normalizer = Normalizer::default();
    PartyRules::new(normalizer, OwnedNumbers::from_raw(&normalizer, [COMPANY]))
}

/// A completed call from `from` to `to`, Twilio-shaped (as parsed from
/// the REST form, so `raw` holds the whole record).
#[allow(clippy::too_many_arguments)]
pub fn call(
    sid: CallSid,
    parent: Option<&CallSid>,
    direction: &str,
    from: &str,
    to: &str,
    start: DateTime<Utc>,
    duration: u32,
    account_sid: &str,
) -> Call {
    let mut call = Call::new(sid, CallStatus::Completed, CallDirection::parse(direction));
    call.account_sid = Some(account_sid.to_owned());
    call.parent_call_sid = parent.cloned();
    call.from = Some(from.to_owned());
    call.to = Some(to.to_owned());
    call.from_formatted = Some(from.to_owned());
    call.to_formatted = Some(to.to_owned());
    call.start_time = Some(start);
    call.end_time = Some(start + Duration::seconds(i64::from(duration)));
    call.date_created = Some(start - Duration::seconds(1));
    call.date_updated = Some(start + Duration::seconds(i64::from(duration) + 60));
    call.duration = Some(duration);
    let minutes = i64::from(duration.div_ceil(60).max(1));
    call.price = Some(Decimal::new(-850 * minutes, 5));
    call.price_unit = Some("USD".to_owned());
    call.queue_time = Some(0);
    call.api_version = Some("2010-04-01".to_owned());
    call.uri = Some(format!(
        "/2010-04-01/Accounts/{account_sid}/Calls/{}.json",
        call.sid
    ));
    let base = format!("/2010-04-01/Accounts/{account_sid}/Calls/{}", call.sid);
    let mut subresources = serde_json::Map::new();
    for name in [
        "feedback",
        "notifications",
        "recordings",
        "payments",
        "events",
        "siprec",
        "streams",
        "user_defined_message_subscriptions",
        "user_defined_messages",
    ] {
        subresources.insert(
            name.to_owned(),
            serde_json::Value::String(format!("{base}/{name}.json")),
        );
    }
    call.subresource_uris = Some(subresources);
    Call::from_json(&call.to_rest_json()).unwrap_or(call)
}

/// The generated rows, in batches of about `batch` rows (a root and its
/// leg always together), oldest first, over the year before `now`.
pub fn batches(shape: Shape, batch: usize, now: DateTime<Utc>) -> impl Iterator<Item = Vec<Call>> {
    let others = shape.conversations.saturating_sub(1).max(1);
    let other_rows = shape.calls.saturating_sub(shape.big);
    // At most one interaction per row, so the last one starts before `now`.
    let interactions = other_rows + shape.big;
    let step_ms = (365 * 24 * 3600 * 1000 / interactions.max(1) as i64).max(1);
    let first = now - Duration::days(365);
    let mut emitted_other = 0usize;
    let mut emitted_big = 0usize;
    let mut interaction = 0usize;
    let mut customer_turn = 0usize;
    let mut n = 0u64;
    std::iter::from_fn(move || {
        let mut out = Vec::with_capacity(batch + 1);
        while out.len() < batch {
            let other_left = other_rows - emitted_other;
            let big_left = shape.big - emitted_big;
            if other_left == 0 && big_left == 0 {
                break;
            }
            // Interleave the big customer's calls evenly with the others'.
            let big_turn = big_left > 0
                && (other_left == 0
                    || emitted_big * other_rows.max(1) <= emitted_other * shape.big);
            let start = first + Duration::milliseconds(step_ms * interaction as i64);
            let start = DateTime::from_timestamp(start.timestamp(), 0).unwrap_or(start);
            let duration = 20 + (interaction * 37 % 280) as u32;
            interaction += 1;
            n += 1;
            let root = sid(n);
            if big_turn {
                out.push(call(
                    root,
                    None,
                    "inbound",
                    &customer_number(0),
                    COMPANY,
                    start,
                    duration,
                    ACCOUNT_SID,
                ));
                emitted_big += 1;
                continue;
            }
            let customer = customer_number(1 + customer_turn % others);
            customer_turn += 1;
            let forwarded = interaction % 4 == 0 && other_left >= 2;
            out.push(call(
                root.clone(),
                None,
                "inbound",
                &customer,
                COMPANY,
                start,
                duration,
                ACCOUNT_SID,
            ));
            emitted_other += 1;
            if forwarded {
                n += 1;
                out.push(call(
                    sid(n),
                    Some(&root),
                    "outbound-dial",
                    &customer,
                    AGENT,
                    start + Duration::seconds(4),
                    duration.saturating_sub(4),
                    ACCOUNT_SID,
                ));
                emitted_other += 1;
            }
        }
        (!out.is_empty()).then_some(out)
    })
}

/// What loading took.
#[derive(Clone, Debug, Serialize)]
pub struct Loaded {
    /// The shape loaded.
    pub shape: Shape,
    /// Rows stored.
    pub calls: u64,
    /// Conversations stored.
    pub conversations: u64,
    /// Seconds.
    pub secs: f64,
    /// The big conversation's id (`None` when the shape has none).
    pub big_conversation: Option<ConversationId>,
}

/// Plans and applies the dataset batch by batch (1,000 rows each, as a
/// sync page), then finds the big conversation.
pub async fn load(store: &Arc<dyn Store>, shape: Shape) -> Result<Loaded> {
    let rules = rules();
    let clock = Instant::now();
    for batch in batches(shape, 1000, Utc::now()) {
        let mut tx = store.begin_ingest().await?;
        callview_core::sync::ingest_in(tx.as_mut(), &rules, batch).await?;
        tx.commit().await?;
    }
    let secs = clock.elapsed().as_secs_f64();
    let counts = store.counts().await?;
    let big = if shape.big > 0 {
        let key = Normalizer::default()
            .canonical_phone(&customer_number(0))
            .context("customer 0's number does not parse")?;
        let lookup = ConversationLookup {
            keys: vec![key],
            ..ConversationLookup::default()
        };
        let mut tx = store.begin_ingest().await?;
        let found = tx.load_conversations(&lookup).await?;
        drop(tx);
        let id = found
            .conversations
            .first()
            .map(|c| c.id)
            .context("the big conversation was not stored")?;
        Some(id)
    } else {
        None
    };
    Ok(Loaded {
        shape,
        calls: counts.calls,
        conversations: counts.conversations,
        secs,
        big_conversation: big,
    })
}

/// First names given to contacts by [`name_contacts`].
const FIRST_NAMES: [&str; 12] = [
    "Amelia", "Bruno", "Chiara", "Dmitri", "Esther", "Farid", "Greta", "Hiroshi", "Ingrid",
    "Jamal", "Katrin", "Lucas",
];

/// Last names given to contacts by [`name_contacts`].
const LAST_NAMES: [&str; 25] = [
    "Whitfield",
    "Okonkwo",
    "Lindqvist",
    "Moreau",
    "Castellanos",
    "Nakamura",
    "Brennan",
    "Adeyemi",
    "Kowalski",
    "Haddad",
    "Sorensen",
    "Delacroix",
    "Petrov",
    "Abernathy",
    "Quintero",
    "Valentini",
    "Oyelaran",
    "Fitzgerald",
    "Ramaswamy",
    "Gallagher",
    "Szymanski",
    "Ferreira",
    "Holloway",
    "Mbeki",
    "Tanaka",
];

/// A fragment of "Whitfield", the last name of the first 12 contacts
/// [`name_contacts`] names (and of one in 300 after them).
pub const NAME_FRAGMENT: &str = "itfiel";

/// The name [`name_contacts`] gives its `j`th contact.
pub fn contact_name(j: usize) -> String {
    format!(
        "{} {}",
        FIRST_NAMES[j % FIRST_NAMES.len()],
        LAST_NAMES[(j / FIRST_NAMES.len()) % LAST_NAMES.len()]
    )
}

/// Names every `every`th contact (by id) the way the server's contact
/// edit does (`IngestTx::edit_contact`, as `PATCH /api/contacts/{id}`
/// with a `name`), in transactions of 500 edits. Returns how many.
pub async fn name_contacts(store: &Arc<dyn Store>, every: usize) -> Result<u64> {
    let every = every.max(1) as i64;
    let meta = EditMeta {
        by: Some("callview-bench".to_owned()),
        at: Utc::now(),
    };
    let mut named = 0u64;
    let mut after = 0i64;
    loop {
        let page = store.contacts_page(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut tx = store.begin_ingest().await?;
        for contact in page.iter().filter(|c| c.id % every == 0) {
            let edit = ContactEdit::from_json(
                &serde_json::json!({ "name": contact_name(named as usize) }),
            )
            .map_err(|e| anyhow::anyhow!("a contact edit: {e:?}"))?;
            tx.edit_contact(contact.id, &edit, None, &meta).await?;
            named += 1;
        }
        tx.commit().await?;
        if page.len() < 500 {
            break;
        }
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_valid_and_distinct() {
        let normalizer = Normalizer::default();
        let mut seen = std::collections::HashSet::new();
        let indices: std::collections::BTreeSet<usize> = (0..300_000)
            .step_by(997)
            .chain([1, 19, 20, 199_999])
            .collect();
        for i in indices {
            let number = customer_number(i);
            let canonical = normalizer.canonical_phone(&number);
            assert_eq!(canonical.as_deref(), Some(number.as_str()), "{number}");
            assert!(seen.insert(number));
        }
    }

    #[test]
    fn batches_have_the_shape() {
        let shape = Shape {
            conversations: 50,
            calls: 1_000,
            big: 100,
        };
        let all: Vec<Call> = batches(shape, 64, Utc::now()).flatten().collect();
        assert_eq!(all.len(), 1_000);
        let big = all
            .iter()
            .filter(|c| c.from.as_deref() == Some(customer_number(0).as_str()))
            .count();
        assert_eq!(big, 100);
        let customers: std::collections::HashSet<_> =
            all.iter().filter_map(|c| c.from.clone()).collect();
        assert_eq!(customers.len(), 50);
        assert!(all.iter().any(|c| c.parent_call_sid.is_some()));
    }
}
