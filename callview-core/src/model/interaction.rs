//! One entry per interaction: a root call with its legs folded in
//! (`call-model.md` section 4).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::call::{Call, CallSid, CallStatus};
use crate::endpoint::ActualDirection;

use super::types::{DisplayStatus, StoredCall};

/// The figures of one interaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The root call's duration, seconds.
    pub total_duration: u32,
    /// Seconds someone talked: the answered legs' durations, or the root's
    /// duration when it has no legs.
    pub talk_time: u32,
    /// `total_duration - talk_time`, never negative.
    pub wait_time: u32,
    /// `completed`, `busy`, `failed`, `canceled`, `no-answer`, or the root's
    /// live status while it runs.
    pub display_status: DisplayStatus,
}

/// Computes an interaction's figures from its root and its legs.
///
/// ```
/// use callview_core::{Call, CallDirection, CallSid, CallStatus};
/// use callview_core::model::summarize;
/// let mut root = Call::new(CallSid::new("CA1").unwrap(), CallStatus::Completed, CallDirection::Inbound);
/// root.duration = Some(60);
/// let mut leg = Call::new(CallSid::new("CA2").unwrap(), CallStatus::Completed, CallDirection::OutboundDial);
/// leg.duration = Some(45);
/// let s = summarize(&root, &[&leg]);
/// assert_eq!((s.total_duration, s.talk_time, s.wait_time), (60, 45, 15));
/// assert_eq!(s.display_status, "completed");
/// ```
pub fn summarize(root: &Call, legs: &[&Call]) -> Summary {
    let total_duration = root.duration_secs();
    let talk_time = if legs.is_empty() {
        total_duration
    } else {
        legs.iter()
            .filter(|l| l.status == CallStatus::Completed && l.duration_secs() > 0)
            .map(|l| l.duration_secs())
            .fold(0u32, u32::saturating_add)
    };
    let display_status = DisplayStatus::of_lone_call(&root.status, talk_time);
    Summary {
        total_duration,
        talk_time,
        wait_time: total_duration.saturating_sub(talk_time),
        display_status,
    }
}

/// Formats seconds as `40s`, `2m 05s` or `1h 02m 03s`.
///
/// ```
/// use callview_core::model::interaction::format_duration;
/// assert_eq!(format_duration(40), "40s");
/// assert_eq!(format_duration(125), "2m 05s");
/// assert_eq!(format_duration(3723), "1h 02m 03s");
/// ```
pub fn format_duration(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// One interaction: a root call and its folded legs, ready for the API.
#[derive(Clone, Debug, PartialEq)]
pub struct Interaction {
    /// The root call's row.
    pub root: StoredCall,
    /// Every descendant, oldest first.
    pub legs: Vec<StoredCall>,
    /// The figures.
    pub summary: Summary,
    /// The interaction's direction from the business's point of view.
    pub actual_direction: ActualDirection,
    /// `📞 Inbound call - 40s` style.
    pub subject: String,
    /// A readable multi-line summary.
    pub body: String,
    /// One short line.
    pub blurb: String,
}

impl Interaction {
    /// Builds the interaction of `root` with `legs` (any order).
    pub fn new(root: StoredCall, mut legs: Vec<StoredCall>) -> Self {
        legs.sort_by(|a, b| oldest_first(&a.call, &b.call));
        let leg_calls: Vec<&Call> = legs.iter().map(|l| &l.call).collect();
        let summary = summarize(&root.call, &leg_calls);
        let actual_direction = root.derived.actual_direction;
        let subject = subject(actual_direction, &summary);
        let body = body(&root.call, &legs, &summary, actual_direction);
        let blurb = blurb(actual_direction, &summary);
        Self {
            root,
            legs,
            summary,
            actual_direction,
            subject,
            body,
            blurb,
        }
    }

    /// Whether at least one leg was folded in.
    pub fn merged_from_parent(&self) -> bool {
        !self.legs.is_empty()
    }
}

/// Orders calls oldest first: by start time (calls without one last), then SID.
pub fn oldest_first(a: &Call, b: &Call) -> std::cmp::Ordering {
    (a.start_time.is_none(), a.start_time, &a.sid).cmp(&(
        b.start_time.is_none(),
        b.start_time,
        &b.sid,
    ))
}

/// Orders calls newest first: by start time (calls without one last), then SID descending.
pub fn newest_first(a: &Call, b: &Call) -> std::cmp::Ordering {
    (b.start_time.is_some(), b.start_time, &b.sid).cmp(&(
        a.start_time.is_some(),
        a.start_time,
        &a.sid,
    ))
}

fn direction_word(direction: ActualDirection) -> &'static str {
    match direction {
        ActualDirection::Inbound => "Inbound",
        ActualDirection::Outbound => "Outbound",
        ActualDirection::Internal => "Internal",
    }
}

fn is_live(summary: &Summary) -> bool {
    summary.display_status.is_live()
}

fn subject(direction: ActualDirection, summary: &Summary) -> String {
    let word = direction_word(direction);
    if summary.display_status == "completed" {
        format!(
            "📞 {word} call - {}",
            format_duration(summary.total_duration)
        )
    } else if is_live(summary) {
        format!("📞 {word} call - {}", summary.display_status)
    } else {
        "📞 Missed call".to_owned()
    }
}

fn blurb(direction: ActualDirection, summary: &Summary) -> String {
    format!(
        "{} · {} · {}",
        direction_word(direction),
        summary.display_status,
        format_duration(summary.total_duration)
    )
}

fn time_text(time: Option<DateTime<Utc>>) -> String {
    time.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "not started".to_owned())
}

fn body(root: &Call, legs: &[StoredCall], summary: &Summary, direction: ActualDirection) -> String {
    let mut lines = vec![
        format!("{} call", direction_word(direction)),
        format!("From: {}", root.from.as_deref().unwrap_or("unknown")),
        format!("To: {}", root.to.as_deref().unwrap_or("unknown")),
        format!("Status: {}", summary.display_status),
        format!(
            "Duration: {} (talk {}, wait {})",
            format_duration(summary.total_duration),
            format_duration(summary.talk_time),
            format_duration(summary.wait_time)
        ),
    ];
    if let Some(price) = root.price {
        lines.push(format!(
            "Cost: {} {}",
            price,
            root.price_unit.as_deref().unwrap_or("")
        ));
    }
    lines.push(format!("Started: {}", time_text(root.start_time)));
    for leg in legs {
        lines.push(format!(
            "Leg: {} → {} ({}, {})",
            leg.call.from.as_deref().unwrap_or("unknown"),
            leg.call.to.as_deref().unwrap_or("unknown"),
            leg.call.status,
            format_duration(leg.call.duration_secs())
        ));
    }
    lines.join("\n")
}

/// Folds a conversation's rows into interactions, newest first: one per root
/// call, each with its descendants as legs. A row whose root is not among
/// `rows` stands as its own interaction (it is never hidden).
pub fn fold_interactions(rows: Vec<StoredCall>) -> Vec<Interaction> {
    let present: std::collections::HashSet<CallSid> =
        rows.iter().map(|r| r.call.sid.clone()).collect();
    let mut roots = Vec::new();
    let mut legs: HashMap<CallSid, Vec<StoredCall>> = HashMap::new();
    for row in rows {
        if row.is_root() || !present.contains(&row.root_sid) {
            roots.push(row);
        } else {
            legs.entry(row.root_sid.clone()).or_default().push(row);
        }
    }
    roots.sort_by(|a, b| newest_first(&a.call, &b.call));
    roots
        .into_iter()
        .map(|root| {
            let own = if root.is_root() {
                legs.remove(&root.call.sid).unwrap_or_default()
            } else {
                Vec::new()
            };
            Interaction::new(root, own)
        })
        .collect()
}
