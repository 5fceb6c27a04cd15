//! A conversation's thread: its calls (interactions, legs folded in) and its
//! text messages, interleaved newest first.
//!
//! Calls and texts share one order: time descending (a root call's start
//! time, a text's [`crate::text::Text::at`]; items without a time last),
//! then SID descending. A page reads at most `limit` of each kind just after
//! the cursor ([`Store::messages`], [`Store::texts`]) and keeps the first
//! `limit` of the merge, so every item appears exactly once across pages.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

pub use crate::model::ThreadKinds;
use crate::model::{ConversationId, Interaction, StoredText};
use crate::store::{MessageCursor, MessageQuery, Store, StoreError};

/// One item of a thread.
#[derive(Clone, Debug, PartialEq)]
pub enum ThreadItem {
    /// A call, legs folded in.
    Call(Box<Interaction>),
    /// A text message.
    Text(Box<StoredText>),
}

impl ThreadItem {
    /// When it happened (`None`: sorts after every dated item).
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Call(i) => i.root.call.start_time,
            Self::Text(t) => t.text.at(),
        }
    }

    /// Its SID.
    pub fn sid(&self) -> &str {
        match self {
            Self::Call(i) => i.root.call.sid.as_str(),
            Self::Text(t) => t.text.sid.as_str(),
        }
    }

    /// The position just after it.
    pub fn cursor(&self) -> MessageCursor {
        match self {
            Self::Call(i) => MessageCursor::after(i),
            Self::Text(t) => MessageCursor::after_text(t),
        }
    }

    /// Newest first: a later time first, undated items last, then the
    /// greater SID first.
    fn newest_first(a: &Self, b: &Self) -> Ordering {
        (b.at().is_some(), b.at(), b.sid()).cmp(&(a.at().is_some(), a.at(), a.sid()))
    }
}

/// A page of a thread.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadPage {
    /// Calls and texts, newest first.
    pub items: Vec<ThreadItem>,
    /// Where the next page starts, when more items follow.
    pub next_cursor: Option<MessageCursor>,
}

/// Reads one page of conversation `id`'s thread. `NotFound` when the
/// conversation does not exist.
pub async fn thread_page(
    store: &dyn Store,
    id: ConversationId,
    query: &MessageQuery,
    kinds: ThreadKinds,
) -> Result<ThreadPage, StoreError> {
    let limit = query.limit as usize;
    let mut items: Vec<ThreadItem> = Vec::new();
    let mut more = false;
    if kinds != ThreadKinds::Texts {
        let calls = store.messages(id, query).await?;
        more |= calls.next_cursor.is_some();
        items.extend(
            calls
                .interactions
                .into_iter()
                .map(|i| ThreadItem::Call(Box::new(i))),
        );
    }
    if kinds != ThreadKinds::Calls {
        // One more than the page: whether texts go on past it.
        let probe = MessageQuery {
            limit: query.limit.saturating_add(1),
            after: query.after.clone(),
        };
        let texts = store.texts(id, &probe).await?;
        more |= texts.len() > limit;
        items.extend(
            texts
                .into_iter()
                .take(limit)
                .map(|t| ThreadItem::Text(Box::new(t))),
        );
    }
    items.sort_by(ThreadItem::newest_first);
    if items.len() > limit {
        items.truncate(limit);
        more = true;
    }
    let next_cursor = if more {
        items.last().map(ThreadItem::cursor)
    } else {
        None
    };
    Ok(ThreadPage { items, next_cursor })
}
