//! What the statistics count of one interaction (a root call with its
//! legs): kept per root call by every ingest transaction, so that
//! `/api/stats` adds up stored figures instead of folding call trees.

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::call::{Call, CallSid};
use crate::endpoint::ActualDirection;

use super::interaction::summarize;
use super::plan::ConversationRef;
use super::types::DisplayStatus;

/// How an interaction ended, as the statistics group it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Somebody talked (display status `completed`).
    Answered,
    /// Nobody did: `no-answer`, `busy`, `failed` or `canceled`, the same
    /// set as the list's `status=missed`.
    Missed,
    /// Still running.
    Live,
    /// A status Twilio sent that callview does not know.
    Other,
}

impl Outcome {
    /// The outcome of a display status.
    ///
    /// ```
    /// use callview_core::model::{DisplayStatus, Outcome};
    /// assert_eq!(Outcome::of(&DisplayStatus::Busy), Outcome::Missed);
    /// assert_eq!(Outcome::of(&DisplayStatus::Ringing), Outcome::Live);
    /// ```
    pub fn of(status: &DisplayStatus) -> Self {
        match status {
            DisplayStatus::Completed => Self::Answered,
            DisplayStatus::NoAnswer
            | DisplayStatus::Busy
            | DisplayStatus::Failed
            | DisplayStatus::Canceled => Self::Missed,
            DisplayStatus::Other(_) => Self::Other,
            _ => Self::Live,
        }
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Missed => "missed",
            Self::Live => "live",
            Self::Other => "other",
        }
    }

    /// Reads the stored form; unknown text is [`Outcome::Other`].
    pub fn parse(text: &str) -> Self {
        match text {
            "answered" => Self::Answered,
            "missed" => Self::Missed,
            "live" => Self::Live,
            _ => Self::Other,
        }
    }
}

/// What one interaction costs: the sum of its calls' Twilio prices in one
/// currency, in billionths of the unit (exact for Twilio's prices, which
/// carry at most six decimals).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// ISO 4217 code as Twilio sends it (`USD`); empty when no call of
    /// the interaction has a price yet.
    pub currency: String,
    /// The sum of the prices, billionths (Twilio's sign: a charge is
    /// negative).
    pub nanos: i64,
}

impl Cost {
    /// Billionths per unit.
    pub const SCALE: u32 = 9;

    /// Billionths of a price, rounded to nine decimals (half away from
    /// zero); `None` beyond ±9.2 billion units.
    ///
    /// ```
    /// use callview_core::model::Cost;
    /// use rust_decimal::Decimal;
    /// assert_eq!(Cost::nanos_of("-0.0085".parse::<Decimal>().unwrap()), Some(-8_500_000));
    /// ```
    pub fn nanos_of(price: Decimal) -> Option<i64> {
        (price * Decimal::from(1_000_000_000u64)).round().to_i64()
    }

    /// An amount of billionths back as a decimal.
    ///
    /// ```
    /// use callview_core::model::Cost;
    /// assert_eq!(Cost::decimal_of(-8_500_000).to_string(), "-0.008500000");
    /// ```
    pub fn decimal_of(nanos: i128) -> Decimal {
        Decimal::from_i128_with_scale(nanos, Self::SCALE)
    }
}

/// The figures statistics keep of one interaction, computed from its root
/// call and legs (the same rules as [`summarize`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InteractionFacts {
    /// The root call.
    pub root_sid: CallSid,
    /// Its conversation.
    pub conversation: ConversationRef,
    /// When it happened: the root's start time, else (a call Twilio never
    /// dialled) its creation time; `None` leaves it out of every range.
    pub at: Option<DateTime<Utc>>,
    /// Its actual direction.
    pub direction: ActualDirection,
    /// How it ended.
    pub outcome: Outcome,
    /// Seconds somebody talked.
    pub talk_time: u32,
    /// Seconds before that (or ringing in vain).
    pub wait_time: u32,
    /// The business's line it used: the root's `to` when inbound, else
    /// its `from`, as Twilio sent it (empty when Twilio sent none).
    pub line: String,
    /// What its calls cost, in the currency of the first priced call
    /// (root first); a call priced in another currency is left out
    /// (Twilio bills an account in one currency).
    pub cost: Cost,
}

impl InteractionFacts {
    /// The facts of the tree `root` + `legs`, whose interaction goes
    /// `direction`, stored in `conversation`.
    ///
    /// ```
    /// use callview_core::{ActualDirection, Call, CallDirection, CallSid, CallStatus, ConversationId};
    /// use callview_core::model::{ConversationRef, InteractionFacts, Outcome};
    /// let mut root = Call::new(CallSid::new("CA1").unwrap(), CallStatus::Completed, CallDirection::Inbound);
    /// root.duration = Some(60);
    /// root.to = Some("+16175006181".into());
    /// let mut leg = Call::new(CallSid::new("CA2").unwrap(), CallStatus::Completed, CallDirection::OutboundDial);
    /// leg.duration = Some(45);
    /// let f = InteractionFacts::of_tree(&root, &[&leg], ActualDirection::Inbound, ConversationRef::Existing(ConversationId(1)));
    /// assert_eq!((f.talk_time, f.wait_time, f.outcome), (45, 15, Outcome::Answered));
    /// assert_eq!(f.line, "+16175006181");
    /// ```
    pub fn of_tree(
        root: &Call,
        legs: &[&Call],
        direction: ActualDirection,
        conversation: ConversationRef,
    ) -> Self {
        let summary = summarize(root, legs);
        let line = match direction {
            ActualDirection::Inbound => root.to.as_deref(),
            _ => root.from.as_deref(),
        }
        .unwrap_or_default()
        .trim()
        .to_owned();
        let mut cost = Cost::default();
        for call in std::iter::once(root).chain(legs.iter().copied()) {
            let (Some(price), Some(unit)) = (call.price, call.price_unit.as_deref()) else {
                continue;
            };
            if cost.currency.is_empty() {
                cost.currency = unit.to_owned();
            }
            if cost.currency == unit {
                let nanos = Cost::nanos_of(price).unwrap_or_default();
                cost.nanos = cost.nanos.saturating_add(nanos);
            }
        }
        Self {
            root_sid: root.sid.clone(),
            conversation,
            at: root.start_time.or(root.date_created),
            direction,
            outcome: Outcome::of(&summary.display_status),
            talk_time: summary.talk_time,
            wait_time: summary.wait_time,
            line,
            cost,
        }
    }
}

impl InteractionFacts {
    /// The facts of a stored interaction (a root's row with its legs'),
    /// in the conversation it is stored in: what the planner computed when
    /// it wrote them, computed again from the rows.
    pub fn of_interaction(interaction: &super::interaction::Interaction) -> Self {
        let legs: Vec<&Call> = interaction.legs.iter().map(|l| &l.call).collect();
        Self::of_tree(
            &interaction.root.call,
            &legs,
            interaction.root.derived.actual_direction,
            ConversationRef::Existing(interaction.root.conversation_id),
        )
    }
}
