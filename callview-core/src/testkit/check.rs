//! Whole-store checks: [`check_invariants`] (counters equal rows, trees are
//! whole, nothing empty) and [`snapshot`] (a database-independent picture
//! of the final state, for comparing two stores).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};

use crate::call::CallSid;
use crate::endpoint::{ActualDirection, Normalizer};
use crate::model::{ConversationId, Interaction, MessageType, StoredCall, StoredText};
use crate::store::{
    ConversationCursor, ConversationQuery, ConversationView, MessageCursor, MessageQuery, Store,
    StoreCounts, StoreError,
};
use crate::thread::{thread_page, ThreadItem, ThreadKinds};

/// Everything [`check_invariants`] found wrong, one line each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Violations(pub Vec<String>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} store invariant(s) violated:", self.0.len())?;
        for v in &self.0 {
            writeln!(f, "  - {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl From<StoreError> for Violations {
    fn from(e: StoreError) -> Self {
        Self(vec![format!("store error: {e}")])
    }
}

/// The page size [`all_conversations`] lists with: small, so page edges
/// are crossed often in the tests' small stores.
const LIST_PAGE: u32 = 7;

/// Above this many conversations, pages of [`BIG_LIST_PAGE`]: the crash
/// and load tests check stores of 10,000 conversations after every kill.
const BIG_LIST: u64 = 2_000;

/// The page size for stores of more than [`BIG_LIST`] conversations.
const BIG_LIST_PAGE: u32 = 500;

/// Every conversation, following `limit`/`offset` pages until the total is
/// reached (checking the pages agree on the total).
pub async fn all_conversations(store: &dyn Store) -> Result<Vec<ConversationView>, StoreError> {
    let mut all = Vec::new();
    let mut limit = LIST_PAGE;
    loop {
        let page = store
            .list_conversations(&ConversationQuery::page(limit, all.len() as u64))
            .await?;
        if page.total > BIG_LIST {
            limit = BIG_LIST_PAGE;
        }
        let got = page.conversations.len();
        all.extend(page.conversations);
        if got == 0 || all.len() as u64 >= page.total {
            break;
        }
    }
    Ok(all)
}

/// The ordering key of the conversations list: `last_message_at DESC NULLS
/// LAST, id DESC` (greater sorts first).
/// Every conversation matching `query`'s filters, from its first page (of
/// `query.limit`, `query.offset` 0) following each page's `next_cursor`,
/// passed through its text form as a client would, until a page has none.
///
/// Fails with [`StoreError::Invalid`] when a store breaks the cursor
/// contract: a `next_cursor` that is not the position of the page's last
/// row, a full page without one, or more pages than rows.
pub async fn walk_by_cursor(
    store: &dyn Store,
    query: &ConversationQuery,
) -> Result<Vec<ConversationView>, StoreError> {
    let broken = |what: String| Err(StoreError::Invalid(format!("cursor walk: {what}")));
    let mut query = query.clone();
    query.offset = 0;
    query.after = None;
    let mut all: Vec<ConversationView> = Vec::new();
    let mut pages = 0_u64;
    loop {
        let page = store.list_conversations(&query).await?;
        pages += 1;
        let got = page.conversations.len();
        all.extend(page.conversations);
        match page.next_cursor {
            None => return Ok(all),
            Some(cursor) => {
                let Some(last) = all.last() else {
                    return broken("an empty page has a next cursor".into());
                };
                if cursor != ConversationCursor::after(&last.conversation) {
                    return broken(format!(
                        "next cursor {cursor:?} is not the position of the page's last row {}",
                        last.conversation.id
                    ));
                }
                if got < query.limit as usize || pages > page.total + 1 {
                    return broken(format!(
                        "page {pages} has {got} of {} rows and a next cursor (total {})",
                        query.limit, page.total
                    ));
                }
                let text = cursor.to_string();
                query.after = Some(ConversationCursor::parse(&text)?);
            }
        }
    }
}

fn list_key(view: &ConversationView) -> (bool, Option<DateTime<Utc>>, ConversationId) {
    let c = &view.conversation;
    (
        c.counters.last_message_at.is_some(),
        c.counters.last_message_at,
        c.id,
    )
}

/// The ordering key of the newest root (`docs/storage.md`): greatest
/// `(start_time IS NOT NULL, start_time, twilio_sid)`.
fn root_key(row: &StoredCall) -> (bool, Option<DateTime<Utc>>, &CallSid) {
    (
        row.call.start_time.is_some(),
        row.call.start_time,
        &row.call.sid,
    )
}

/// Walks the whole store and checks every rule that must hold after any
/// sequence of syncs (`call-model.md` sections 3 to 5, `docs/storage.md`):
///
/// * the conversations list pages agree on `total`, hold no duplicate, are
///   ordered `last_message_at DESC NULLS LAST, id DESC`, and equal
///   [`Store::conversation`]'s view;
/// * no conversation is empty; each has its own contact, `external_id` =
///   the display form of the contact's key, subject `Calls with …`;
/// * counters equal the rows: `total_calls` = root rows, `total_duration` =
///   sum of root durations, `last_message_at` = latest start, and
///   `last_call_direction`/`last_root_sid` = the newest root's;
/// * every row whose parent is stored is a child with its parent's root and
///   in its root's conversation; every other row is a root;
/// * each root's stored `display_status`/`merged_from_parent` agree with its
///   folded interaction, every leg is marked `merged_from_parent`;
/// * `counts()` and `unfinished_calls()` agree with
///   the rows.
pub async fn check_invariants(store: &dyn Store) -> Result<(), Violations> {
    let mut v: Vec<String> = Vec::new();
    let normalizer = Normalizer::default();

    let first = store
        .list_conversations(&ConversationQuery::page(200, 0))
        .await?;
    let views = all_conversations(store).await?;
    if first.total != views.len() as u64 {
        v.push(format!(
            "list_conversations total is {} but paging returned {} conversations",
            first.total,
            views.len()
        ));
    }
    if views.get(..first.conversations.len()) != Some(first.conversations.as_slice()) {
        v.push("listing in one page and in pages of 7 gives different results".into());
    }
    if first.next_cursor.is_some() != (first.total > 200) {
        v.push(format!(
            "the first page of 200 of {} has next_cursor {:?}",
            first.total, first.next_cursor
        ));
    }
    let walk_page = if first.total > BIG_LIST {
        BIG_LIST_PAGE - 2
    } else {
        LIST_PAGE - 2
    };
    match walk_by_cursor(store, &ConversationQuery::page(walk_page, 0)).await {
        Ok(walked) if walked != views => v.push(format!(
            "following next_cursor in pages of {} gives {:?}, offsets give {:?}",
            walk_page,
            walked.iter().map(|w| w.conversation.id).collect::<Vec<_>>(),
            views.iter().map(|w| w.conversation.id).collect::<Vec<_>>()
        )),
        Ok(_) => {}
        Err(e) => v.push(format!("following next_cursor failed: {e}")),
    }
    for pair in views.windows(2) {
        if list_key(&pair[0]) <= list_key(&pair[1]) {
            v.push(format!(
                "conversations {} and {} are not ordered by last_message_at DESC NULLS LAST, id DESC",
                pair[0].conversation.id, pair[1].conversation.id
            ));
        }
    }

    let mut ids = BTreeSet::new();
    let mut contacts = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut rows: HashMap<CallSid, StoredCall> = HashMap::new();
    for view in &views {
        let c = &view.conversation;
        let id = c.id;
        if !ids.insert(id) {
            v.push(format!("conversation {id} is listed twice"));
        }
        if !contacts.insert(view.contact.id) {
            v.push(format!(
                "contact {} has more than one conversation",
                view.contact.id
            ));
        }
        let key = view.contact.phone_number.clone();
        if !keys.insert(key.clone()) {
            v.push(format!("key {key:?} has more than one conversation"));
        }
        let display = normalizer.display_key(&key);
        if c.external_id != display {
            v.push(format!(
                "conversation {id} ({key}): external_id {:?}, expected {display:?}",
                c.external_id
            ));
        }
        if c.subject.as_deref() != Some(format!("Calls with {display}").as_str()) {
            v.push(format!(
                "conversation {id} ({key}): subject {:?}",
                c.subject
            ));
        }
        if view.contact.formatted_number.as_deref() != Some(display.as_str()) {
            v.push(format!(
                "contact of {key}: formatted_number {:?}, expected {display:?}",
                view.contact.formatted_number
            ));
        }
        match store.conversation(id).await {
            Ok(single) if single != *view => v.push(format!(
                "conversation({id}) differs from its entry in the list"
            )),
            Ok(_) => {}
            Err(e) => v.push(format!("conversation({id}) failed: {e}")),
        }

        let calls = store.conversation_calls(id).await?;
        let texts = all_texts(store, id).await?;
        if calls.is_empty() && texts.is_empty() {
            v.push(format!(
                "conversation {id} ({key}) has no calls and no texts"
            ));
            continue;
        }
        check_texts(&mut v, view, &texts, &calls);
        let thread = all_thread(store, id).await?;
        let roots_and_texts = calls.iter().filter(|r| r.is_root()).count() + texts.len();
        if thread.len() != roots_and_texts {
            v.push(format!(
                "conversation {id} ({key}): the thread holds {} items for {roots_and_texts} root calls and texts",
                thread.len()
            ));
        }
        let roots: Vec<&StoredCall> = calls.iter().filter(|r| r.is_root()).collect();
        let total_calls = roots.len() as u64;
        let total_duration: u64 = roots
            .iter()
            .map(|r| u64::from(r.call.duration_secs()))
            .sum();
        let last_message_at = calls
            .iter()
            .filter_map(|r| r.call.start_time)
            .chain(texts.iter().filter_map(|t| t.text.at()))
            .max();
        let newest = roots.iter().max_by(|a, b| root_key(a).cmp(&root_key(b)));
        let counters = &c.counters;
        if counters.total_calls != total_calls {
            v.push(format!(
                "conversation {id} ({key}): total_calls {} but {total_calls} root rows",
                counters.total_calls
            ));
        }
        if counters.total_duration != total_duration {
            v.push(format!(
                "conversation {id} ({key}): total_duration {} but root rows sum to {total_duration}",
                counters.total_duration
            ));
        }
        if counters.last_message_at != last_message_at {
            v.push(format!(
                "conversation {id} ({key}): last_message_at {:?} but the newest call or text is at {last_message_at:?}",
                counters.last_message_at
            ));
        }
        let newest_direction = newest.map(|r| r.derived.actual_direction);
        if counters.last_call_direction != newest_direction {
            v.push(format!(
                "conversation {id} ({key}): last_call_direction {:?} but newest root {:?} is {newest_direction:?}",
                counters.last_call_direction,
                newest.map(|r| r.call.sid.as_str())
            ));
        }
        let newest_sid = newest.map(|r| r.call.sid.clone());
        if counters.last_root_sid != newest_sid {
            v.push(format!(
                "conversation {id} ({key}): last_root_sid {:?} but newest root is {newest_sid:?}",
                counters.last_root_sid
            ));
        }
        let last_message = view.last_message.as_ref().map(|m| m.root.call.sid.clone());
        if last_message != newest_sid {
            v.push(format!(
                "conversation {id} ({key}): last_message is {last_message:?}, newest root is {newest_sid:?}"
            ));
        }

        let interactions = all_messages(store, id).await?;
        if interactions.len() != roots.len() {
            v.push(format!(
                "conversation {id} ({key}): {} messages for {} root rows",
                interactions.len(),
                roots.len()
            ));
        }
        let folded: usize = interactions.iter().map(|i| 1 + i.legs.len()).sum();
        if folded != calls.len() {
            v.push(format!(
                "conversation {id} ({key}): messages hold {folded} calls, the conversation {}",
                calls.len()
            ));
        }
        for i in &interactions {
            check_interaction(&mut v, &key, i);
        }

        for row in calls {
            if row.conversation_id != id {
                v.push(format!(
                    "call {} listed in conversation {id} says conversation {}",
                    row.call.sid, row.conversation_id
                ));
            }
            if let Some(old) = rows.insert(row.call.sid.clone(), row) {
                v.push(format!("call {} is in two conversations", old.call.sid));
            }
        }
    }

    for row in rows.values() {
        let sid = &row.call.sid;
        match row.call.parent_call_sid.as_ref().and_then(|p| rows.get(p)) {
            Some(parent) => {
                if row.is_root() {
                    v.push(format!(
                        "call {sid} is stored as a root but its parent {} is stored",
                        parent.call.sid
                    ));
                } else if row.root_sid != parent.root_sid {
                    v.push(format!(
                        "call {sid} has root {} but its parent {} has root {}",
                        row.root_sid, parent.call.sid, parent.root_sid
                    ));
                }
            }
            None => {
                if !row.is_root() {
                    v.push(format!(
                        "call {sid} has root {} but its parent {:?} is not stored",
                        row.root_sid, row.call.parent_call_sid
                    ));
                }
            }
        }
        if !row.is_root() {
            match rows.get(&row.root_sid) {
                None => v.push(format!(
                    "call {sid}: its root {} is not stored",
                    row.root_sid
                )),
                Some(root) if root.conversation_id != row.conversation_id => v.push(format!(
                    "call {sid} is in conversation {} but its root {} is in {}",
                    row.conversation_id, root.call.sid, root.conversation_id
                )),
                Some(_) => {}
            }
            if !row.derived.merged_from_parent {
                v.push(format!("leg {sid} is not marked merged_from_parent"));
            }
        }
    }

    check_stats(store, &mut v, &views, &rows).await?;

    let counts = store.counts().await?;
    let mut texts = 0u64;
    for view in &views {
        texts += all_texts(store, view.conversation.id).await?.len() as u64;
    }
    let expected = StoreCounts {
        contacts: contacts.len() as u64,
        conversations: views.len() as u64,
        calls: rows.len() as u64,
        texts,
    };
    // Contacts people edited are kept when their last conversation goes
    // (a leg moving under a late parent), so there may be more contacts
    // than conversations list.
    if counts.conversations != expected.conversations
        || counts.calls != expected.calls
        || counts.texts != expected.texts
        || counts.contacts < expected.contacts
    {
        v.push(format!(
            "counts() says {counts:?}, the rows say {expected:?}"
        ));
    }

    let mut unfinished: Vec<&StoredCall> = rows
        .values()
        .filter(|r| !r.call.status.is_final() && r.refresh.unfollowed_at.is_none())
        .collect();
    // Newest first, calls without a start time first.
    unfinished.sort_by(|a, b| {
        (b.call.start_time.is_none(), b.call.start_time, &b.call.sid).cmp(&(
            a.call.start_time.is_none(),
            a.call.start_time,
            &a.call.sid,
        ))
    });
    let expected_unfinished: Vec<&CallSid> = unfinished.iter().map(|r| &r.call.sid).collect();
    let listed = store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(100_000))
        .await?;
    let listed: Vec<&CallSid> = listed.iter().map(|r| &r.call.sid).collect();
    if listed != expected_unfinished {
        v.push(format!(
            "unfinished_calls() lists {listed:?}, the rows say {expected_unfinished:?}"
        ));
    }

    if v.is_empty() {
        Ok(())
    } else {
        Err(Violations(v))
    }
}

fn check_interaction(v: &mut Vec<String>, key: &str, i: &Interaction) {
    let sid = &i.root.call.sid;
    if !i.root.is_root() {
        v.push(format!("{key}: message {sid} is not a root row"));
    }
    if i.root.derived.display_status != i.summary.display_status {
        v.push(format!(
            "{key}: root {sid} stores display_status {:?} but its legs give {:?}",
            i.root.derived.display_status, i.summary.display_status
        ));
    }
    let has_legs = !i.legs.is_empty();
    if i.root.derived.merged_from_parent != has_legs {
        v.push(format!(
            "{key}: root {sid} stores merged_from_parent {} with {} legs",
            i.root.derived.merged_from_parent,
            i.legs.len()
        ));
    }
    for leg in &i.legs {
        if leg.root_sid != *sid {
            v.push(format!(
                "{key}: leg {} folded under {sid} has root {}",
                leg.call.sid, leg.root_sid
            ));
        }
    }
    let mut sorted = i.legs.clone();
    sorted.sort_by(|a, b| crate::model::interaction::oldest_first(&a.call, &b.call));
    if sorted != i.legs {
        v.push(format!("{key}: legs of {sid} are not oldest first"));
    }
}

/// Checks [`check_invariants`] and panics with every violation.
///
/// # Panics
/// When any invariant does not hold or the store fails.
pub async fn assert_invariants(store: &dyn Store) {
    if let Err(violations) = check_invariants(store).await {
        panic!("{violations}");
    }
}

/// A stored call as [`snapshot`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSnapshot {
    /// SID.
    pub sid: String,
    /// Parent SID.
    pub parent: Option<String>,
    /// Root of its tree.
    pub root: String,
    /// Twilio's status.
    pub status: String,
    /// Twilio's direction.
    pub direction: String,
    /// Raw `from`.
    pub from: Option<String>,
    /// Raw `to`.
    pub to: Option<String>,
    /// Seconds.
    pub duration: Option<u32>,
    /// Price, normalized (`-0.014`).
    pub price: Option<String>,
    /// Start.
    pub start_time: Option<DateTime<Utc>>,
    /// End.
    pub end_time: Option<DateTime<Utc>>,
    /// Stored actual direction.
    pub actual_direction: ActualDirection,
    /// Stored display status.
    pub display_status: String,
    /// Stored merged flag.
    pub merged_from_parent: bool,
    /// Recording URL.
    pub recording_url: Option<String>,
}

impl CallSnapshot {
    fn of(row: &StoredCall) -> Self {
        let call = &row.call;
        Self {
            sid: call.sid.to_string(),
            parent: call.parent_call_sid.as_ref().map(ToString::to_string),
            root: row.root_sid.to_string(),
            status: call.status.to_string(),
            direction: call.direction.to_string(),
            from: call.from.clone(),
            to: call.to.clone(),
            duration: call.duration,
            price: call.price.map(|p| p.normalize().to_string()),
            start_time: call.start_time,
            end_time: call.end_time,
            actual_direction: row.derived.actual_direction,
            display_status: row.derived.display_status.to_string(),
            merged_from_parent: row.derived.merged_from_parent,
            recording_url: row.recording_url.clone(),
        }
    }
}

/// One message (a root call with its legs) as [`snapshot`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InteractionSnapshot {
    /// The root call.
    pub root: CallSnapshot,
    /// Its legs, oldest first.
    pub legs: Vec<CallSnapshot>,
    /// Display status computed from the rows.
    pub display_status: String,
    /// Root duration.
    pub total_duration: u32,
    /// Talk time.
    pub talk_time: u32,
    /// Wait time.
    pub wait_time: u32,
    /// Direction of the interaction.
    pub actual_direction: ActualDirection,
    /// Whether legs were folded in.
    pub merged_from_parent: bool,
    /// `📞 …` subject line.
    pub subject: String,
}

/// One conversation as [`snapshot`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationSnapshot {
    /// `external_id` (display form).
    pub external_id: String,
    /// Subject.
    pub subject: Option<String>,
    /// `active`/`archived`.
    pub status: String,
    /// Contact's display name.
    pub display_name: Option<String>,
    /// Contact's formatted number.
    pub formatted_number: Option<String>,
    /// Counter.
    pub total_calls: u64,
    /// Counter.
    pub total_duration: u64,
    /// Counter.
    pub last_call_direction: Option<ActualDirection>,
    /// Latest call start.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Newest root's SID (from the counters).
    pub last_root_sid: Option<String>,
    /// The listed last message's root SID.
    pub last_message: Option<String>,
    /// Messages, newest first.
    pub messages: Vec<InteractionSnapshot>,
    /// Counter: texts.
    pub total_messages: u64,
    /// Counter: the newest message's kind.
    pub last_message_type: Option<MessageType>,
    /// Texts, newest first: SID, actual direction, media and the record.
    pub texts: Vec<(String, ActualDirection, Vec<crate::text::TextMedia>, String)>,
}

/// The final state of a store independent of database ids and row
/// timestamps: conversations by canonical key, each with its counters and
/// its messages (every call's stored values). Two stores that synced the
/// same calls must have equal snapshots whatever the arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSnapshot {
    /// Row counts.
    pub counts: StoreCounts,
    /// Conversations by contact key (`contacts.phone_number`).
    pub conversations: BTreeMap<String, ConversationSnapshot>,
}

impl StoreSnapshot {
    /// The conversation keys, sorted.
    pub fn keys(&self) -> Vec<&str> {
        self.conversations.keys().map(String::as_str).collect()
    }
}

/// The text counters of a conversation equal its texts (newest first,
/// as [`Store::texts`] reads them), and the thread order holds.
fn check_texts(
    v: &mut Vec<String>,
    view: &ConversationView,
    texts: &[StoredText],
    calls: &[StoredCall],
) {
    let c = &view.conversation;
    let id = c.id;
    if c.counters.total_messages != texts.len() as u64 {
        v.push(format!(
            "conversation {id}: total_messages {} but {} texts",
            c.counters.total_messages,
            texts.len()
        ));
    }
    let newest = texts.first();
    if c.counters.last_text_sid.as_ref() != newest.map(|t| &t.text.sid) {
        v.push(format!(
            "conversation {id}: last_text_sid {:?} but the newest text is {:?}",
            c.counters.last_text_sid,
            newest.map(|t| t.text.sid.as_str())
        ));
    }
    if view.last_text.as_ref().map(|t| &t.text.sid) != newest.map(|t| &t.text.sid) {
        v.push(format!(
            "conversation {id}: last_text is not the newest text"
        ));
    }
    // The newest message is a text when it is newer than every call.
    let last_call_at = calls.iter().filter_map(|r| r.call.start_time).max();
    let expected_type = match newest {
        Some(t) if calls.is_empty() || (t.text.at().is_some() && t.text.at() > last_call_at) => {
            Some(MessageType::from(t.text.kind()))
        }
        _ if !calls.is_empty() => Some(MessageType::Call),
        _ => None,
    };
    if c.counters.last_message_type != expected_type {
        v.push(format!(
            "conversation {id}: last_message_type {:?}, expected {expected_type:?}",
            c.counters.last_message_type
        ));
    }
    for pair in texts.windows(2) {
        let key = |t: &StoredText| (t.text.at().is_some(), t.text.at(), t.text.sid.clone());
        if key(&pair[0]) <= key(&pair[1]) {
            v.push(format!(
                "conversation {id}: texts {} and {} are not newest first",
                pair[0].text.sid, pair[1].text.sid
            ));
        }
    }
    for t in texts {
        if t.conversation_id != id {
            v.push(format!(
                "text {} listed in conversation {id} says conversation {}",
                t.text.sid, t.conversation_id
            ));
        }
    }
}

/// Every text of a conversation, newest first, read through
/// [`Store::texts`] a few at a time.
pub async fn all_texts(
    store: &dyn Store,
    id: ConversationId,
) -> Result<Vec<StoredText>, StoreError> {
    let mut out: Vec<StoredText> = Vec::new();
    let mut query = MessageQuery::first(5);
    loop {
        let page = store.texts(id, &query).await?;
        let full = page.len() == query.limit as usize;
        out.extend(page);
        match out.last() {
            Some(last) if full => query.after = Some(MessageCursor::after_text(last)),
            _ => return Ok(out),
        }
    }
}

/// A conversation's whole thread (calls and texts interleaved), newest
/// first, read through [`crate::thread::thread_page`] a few at a time.
pub async fn all_thread(
    store: &dyn Store,
    id: ConversationId,
) -> Result<Vec<ThreadItem>, StoreError> {
    let mut out = Vec::new();
    let mut query = MessageQuery::first(3);
    loop {
        let page = thread_page(store, id, &query, ThreadKinds::All).await?;
        out.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => return Ok(out),
        }
    }
}

/// Every interaction of a conversation, newest first, read through
/// [`Store::messages`] a few at a time (so every check also walks its
/// pages and cursors).
pub async fn all_messages(
    store: &dyn Store,
    id: ConversationId,
) -> Result<Vec<Interaction>, StoreError> {
    let mut out = Vec::new();
    let mut query = MessageQuery::first(7);
    loop {
        let page = store.messages(id, &query).await?;
        out.extend(page.interactions);
        match page.next_cursor {
            Some(cursor) => query.after = Some(cursor),
            None => return Ok(out),
        }
    }
}

/// Takes a [`StoreSnapshot`] of the whole store.
pub async fn snapshot(store: &dyn Store) -> Result<StoreSnapshot, StoreError> {
    let mut conversations = BTreeMap::new();
    for view in all_conversations(store).await? {
        let c = &view.conversation;
        let messages = all_messages(store, c.id)
            .await?
            .iter()
            .map(|i| InteractionSnapshot {
                root: CallSnapshot::of(&i.root),
                legs: i.legs.iter().map(CallSnapshot::of).collect(),
                display_status: i.summary.display_status.to_string(),
                total_duration: i.summary.total_duration,
                talk_time: i.summary.talk_time,
                wait_time: i.summary.wait_time,
                actual_direction: i.actual_direction,
                merged_from_parent: i.merged_from_parent(),
                subject: i.subject.clone(),
            })
            .collect();
        conversations.insert(
            view.contact.phone_number.clone(),
            ConversationSnapshot {
                external_id: c.external_id.clone(),
                subject: c.subject.clone(),
                status: c.status.clone(),
                display_name: view.contact.display_name.clone(),
                formatted_number: view.contact.formatted_number.clone(),
                total_calls: c.counters.total_calls,
                total_duration: c.counters.total_duration,
                last_call_direction: c.counters.last_call_direction,
                last_message_at: c.counters.last_message_at,
                last_root_sid: c.counters.last_root_sid.as_ref().map(ToString::to_string),
                last_message: view
                    .last_message
                    .as_ref()
                    .map(|m| m.root.call.sid.to_string()),
                messages,
                total_messages: c.counters.total_messages,
                last_message_type: c.counters.last_message_type,
                texts: all_texts(store, c.id)
                    .await?
                    .into_iter()
                    .map(|t| {
                        (
                            t.text.sid.to_string(),
                            t.actual_direction,
                            t.media,
                            t.text.raw.to_string(),
                        )
                    })
                    .collect(),
            },
        );
    }
    Ok(StoreSnapshot {
        counts: store.counts().await?,
        conversations,
    })
}

/// The statistics the store keeps equal what its calls say: every
/// interaction's figures, summed per quarter hour, hour, currency and
/// line, per conversation, and the busiest conversations (in full and the
/// first few).
async fn check_stats(
    store: &dyn Store,
    v: &mut Vec<String>,
    views: &[ConversationView],
    rows: &HashMap<CallSid, StoredCall>,
) -> Result<(), StoreError> {
    use crate::model::{fold_interactions, InteractionFacts};
    use crate::stats::{deltas, Counters, FactsRow, SlotKey, SlotRow, StatsQuery};

    let facts: Vec<FactsRow> = fold_interactions(rows.values().cloned().collect())
        .into_iter()
        .map(|i| {
            FactsRow::new(
                &InteractionFacts::of_interaction(&i),
                i.root.conversation_id.0,
            )
        })
        .collect();
    let expected = deltas([], &facts);
    let all = (i64::MIN / 8, i64::MAX / 8);
    let stored = store
        .stats(&StatsQuery {
            hours: vec![all],
            quarters: vec![all],
            heat: Some(all),
            period: all,
            top: 1_000_000,
        })
        .await?;
    let keyed = |rows: &[SlotRow]| -> BTreeMap<SlotKey, Counters> {
        let mut out: BTreeMap<SlotKey, Counters> = BTreeMap::new();
        for r in rows.iter().filter(|r| !r.counters.is_zero()) {
            let key = SlotKey {
                slot: r.slot,
                currency: r.currency.clone(),
                line: r.line.clone(),
            };
            out.entry(key).or_default().add(&r.counters, 1);
        }
        out
    };
    for (table, stored_rows, expected_rows) in [
        ("stats_slots", &stored.quarters, &expected.quarters),
        ("stats_hours", &stored.hours, &expected.hours),
    ] {
        let got = keyed(stored_rows);
        let want: BTreeMap<SlotKey, Counters> = expected_rows.iter().cloned().collect();
        if got != want {
            let differ: Vec<_> = want
                .keys()
                .chain(got.keys())
                .filter(|k| want.get(*k) != got.get(*k))
                .take(3)
                .collect();
            v.push(format!(
                "stats(): {table} differs from the calls' figures at {differ:?}"
            ));
        }
    }
    let mut heat: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for row in stored.heat.iter().flatten() {
        let e = heat.entry(row.slot).or_default();
        e.0 += row.inbound;
        e.1 += row.missed;
    }
    heat.retain(|_, e| *e != (0, 0));
    let mut want_heat: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (key, c) in &expected.quarters {
        let [inbound, _, missed] = c.direction(ActualDirection::Inbound);
        let e = want_heat.entry(key.slot).or_default();
        e.0 += inbound;
        e.1 += missed;
    }
    want_heat.retain(|_, e| *e != (0, 0));
    if heat != want_heat {
        v.push("stats(): the hour-of-week rows differ from the calls' figures".into());
    }

    let external_id = |id: ConversationId| {
        views
            .iter()
            .find(|w| w.conversation.id == id)
            .map(|w| w.conversation.external_id.clone())
            .unwrap_or_default()
    };
    let mut by_calls: Vec<(ConversationId, u64, u64)> = expected
        .conversations
        .iter()
        .map(|(id, t)| (ConversationId(*id), t.interactions as u64, t.missed as u64))
        .collect();
    by_calls.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| external_id(a.0).cmp(&external_id(b.0)))
    });
    let mut by_missed: Vec<_> = by_calls.iter().copied().filter(|t| t.2 > 0).collect();
    by_missed.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then(b.1.cmp(&a.1))
            .then_with(|| external_id(a.0).cmp(&external_id(b.0)))
    });
    let listed = |tops: &[crate::stats::TopContact]| -> Vec<(ConversationId, u64, u64)> {
        tops.iter()
            .map(|t| (t.conversation_id, t.calls, t.missed))
            .collect()
    };
    if listed(&stored.top_by_calls) != by_calls || listed(&stored.top_by_missed) != by_missed {
        v.push(format!(
            "stats(): busiest conversations {:?} / {:?}, the calls say {by_calls:?} / {by_missed:?}",
            listed(&stored.top_by_calls),
            listed(&stored.top_by_missed)
        ));
    }
    // The first few, found without counting every conversation.
    let few = store
        .stats(&StatsQuery {
            period: all,
            top: 2,
            ..StatsQuery::default()
        })
        .await?;
    let first =
        |list: &[(ConversationId, u64, u64)]| list.iter().take(2).copied().collect::<Vec<_>>();
    if listed(&few.top_by_calls) != first(&by_calls)
        || listed(&few.top_by_missed) != first(&by_missed)
    {
        v.push(format!(
            "stats(top 2): busiest conversations {:?} / {:?}, the calls say {:?} / {:?}",
            listed(&few.top_by_calls),
            listed(&few.top_by_missed),
            first(&by_calls),
            first(&by_missed)
        ));
    }
    for top in &stored.top_by_calls {
        if external_id(top.conversation_id) != top.external_id {
            v.push(format!(
                "stats(): top contact {} has external_id {:?}",
                top.conversation_id, top.external_id
            ));
        }
    }
    let total: u64 = views
        .iter()
        .map(|w| w.conversation.counters.total_calls)
        .sum();
    let undated = facts.iter().filter(|f| f.slot.is_none()).count() as u64;
    let counted: u64 = by_calls.iter().map(|t| t.1).sum();
    if counted + undated != total {
        v.push(format!(
            "stats() count {counted} interactions (+{undated} without a time), the conversations' total_calls sum to {total}"
        ));
    }
    // Texts of all time: every stored text with a time, by direction.
    let mut texts = crate::stats::TextCounts::default();
    for view in views {
        for t in all_texts(store, view.conversation.id).await? {
            if t.text.at().is_some() {
                texts.add(t.actual_direction.as_str(), t.text.status.is_failure(), 1);
            }
        }
    }
    if stored.texts != texts {
        v.push(format!(
            "stats(): texts {:?}, the stored texts say {texts:?}",
            stored.texts
        ));
    }
    Ok(())
}
