//! Twilio status callbacks: the form fields Twilio POSTs to a call's
//! `StatusCallback` URL, and how one is merged into the stored call.
//!
//! Pure: no I/O. The HTTP endpoint (signature check, store access) lives in
//! the server; it parses the form with [`StatusCallback::from_form`], looks
//! up the stored call and asks [`StatusCallback::merge`] for the call to
//! hand to the planner.
//!
//! Replays and out-of-order deliveries are tolerated: the sequence number
//! of the last callback applied is kept in the record's `raw` JSON (under
//! [`CALLBACK_KEY`]), an event with a number not greater than it is
//! ignored, and a final status (`completed`, `busy`, ...) is never replaced
//! by a non-final one.
//!
//! ```
//! use callview_core::callback::{Merge, StatusCallback};
//! let form = [
//!     ("CallSid", "CA0123456789abcdef0123456789abcdef"),
//!     ("CallStatus", "completed"),
//!     ("CallDuration", "42"),
//!     ("From", "+16175006181"),
//!     ("To", "+19788447773"),
//!     ("Direction", "inbound"),
//!     ("Timestamp", "Fri, 18 Oct 2019 17:02:00 +0000"),
//!     ("SequenceNumber", "3"),
//! ];
//! let callback = StatusCallback::from_form(form.iter().map(|(k, v)| (*k, *v))).unwrap();
//! let Merge::Apply(call) = callback.merge(None) else { panic!() };
//! assert_eq!(call.duration, Some(42));
//! // The same event again changes nothing.
//! assert!(matches!(callback.merge(Some(&call)), Merge::Ignore(_)));
//! ```

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::call::{parse_twilio_time, Call, CallDirection, CallSid, CallStatus};

/// The key under which the last applied callback is remembered in a
/// call's `raw` record.
pub const CALLBACK_KEY: &str = "callview_status_callback";

/// One status callback, typed. Every field but `call_sid` may be missing.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusCallback {
    /// `CallSid`.
    pub call_sid: CallSid,
    /// `AccountSid`.
    pub account_sid: Option<String>,
    /// `ParentCallSid`.
    pub parent_call_sid: Option<CallSid>,
    /// `From`.
    pub from: Option<String>,
    /// `To`.
    pub to: Option<String>,
    /// `Direction`.
    pub direction: Option<CallDirection>,
    /// `CallStatus`.
    pub status: Option<CallStatus>,
    /// `CallDuration`: seconds, sent with `completed`.
    pub call_duration: Option<u32>,
    /// `Timestamp` (RFC 2822): when the event happened.
    pub timestamp: Option<DateTime<Utc>>,
    /// `SequenceNumber`: the order of the events of one call, from 0.
    pub sequence_number: Option<u64>,
    /// `AnsweredBy`.
    pub answered_by: Option<String>,
    /// `ForwardedFrom`.
    pub forwarded_from: Option<String>,
    /// `CallerName`.
    pub caller_name: Option<String>,
    /// `ApiVersion`.
    pub api_version: Option<String>,
}

/// Why a callback's form could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// No `CallSid` (or an empty one).
    #[error("the callback has no `CallSid`")]
    MissingCallSid,
    /// A field has a value of the wrong form.
    #[error("the callback's `{field}` is not valid: {value:?}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Its value, cut to 64 characters.
        value: String,
    },
}

/// What to do with a callback.
#[derive(Clone, Debug, PartialEq)]
pub enum Merge {
    /// Hand this call to the planner.
    Apply(Box<Call>),
    /// Nothing to write, with the reason (a replay, an older event, a
    /// non-final status after a final one).
    Ignore(&'static str),
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn invalid(field: &'static str, value: &str) -> CallbackError {
    CallbackError::Invalid {
        field,
        value: value.chars().take(64).collect(),
    }
}

impl StatusCallback {
    /// Reads the form fields (name, value) of a callback. Unknown fields are
    /// ignored; a repeated field keeps its last value.
    pub fn from_form<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, CallbackError> {
        let fields: Vec<(&str, &str)> = fields.into_iter().collect();
        let call_sid = fields
            .iter()
            .rev()
            .find(|(name, _)| *name == "CallSid")
            .and_then(|(_, value)| CallSid::new(value.trim()))
            .ok_or(CallbackError::MissingCallSid)?;
        let mut callback = StatusCallback {
            call_sid,
            account_sid: None,
            parent_call_sid: None,
            from: None,
            to: None,
            direction: None,
            status: None,
            call_duration: None,
            timestamp: None,
            sequence_number: None,
            answered_by: None,
            forwarded_from: None,
            caller_name: None,
            api_version: None,
        };
        for (name, value) in fields {
            let text = non_empty(value);
            match name {
                "AccountSid" => callback.account_sid = text,
                "ParentCallSid" => callback.parent_call_sid = text.and_then(CallSid::new),
                "From" => callback.from = text,
                "To" => callback.to = text,
                "Direction" => callback.direction = text.map(|t| CallDirection::parse(&t)),
                "CallStatus" => callback.status = text.map(|t| CallStatus::parse(&t)),
                "CallDuration" => {
                    callback.call_duration = match text {
                        None => None,
                        Some(t) => Some(t.parse().map_err(|_| invalid("CallDuration", value))?),
                    }
                }
                "Timestamp" => {
                    callback.timestamp = match text {
                        None => None,
                        Some(t) => {
                            Some(parse_twilio_time(&t).ok_or_else(|| invalid("Timestamp", value))?)
                        }
                    }
                }
                "SequenceNumber" => {
                    callback.sequence_number = match text {
                        None => None,
                        Some(t) => Some(t.parse().map_err(|_| invalid("SequenceNumber", value))?),
                    }
                }
                "AnsweredBy" => callback.answered_by = text,
                "ForwardedFrom" => callback.forwarded_from = text,
                "CallerName" => callback.caller_name = text,
                "ApiVersion" => callback.api_version = text,
                _ => {}
            }
        }
        Ok(callback)
    }

    /// The call to store after this callback, given the stored (or freshly
    /// fetched) version of the call, if any.
    ///
    /// * an event whose `SequenceNumber` is not greater than the last one
    ///   applied to the call is ignored (a replay or a late delivery);
    /// * a non-final status never replaces a final one;
    /// * otherwise the callback's fields replace the call's, `end_time` is
    ///   set from `Timestamp` when the status becomes final, and
    ///   `date_updated` becomes `Timestamp` when that is newer, so a listed
    ///   record older than the event does not undo it (the planner keeps
    ///   the newer `date_updated`).
    ///
    /// A call not known yet is built from the callback alone; its
    /// `start_time` is estimated (`Timestamp` minus `CallDuration`) until
    /// the next sync brings Twilio's record.
    pub fn merge(&self, current: Option<&Call>) -> Merge {
        let previous = current.and_then(last_sequence);
        if let (Some(previous), Some(incoming)) = (previous, self.sequence_number) {
            if incoming <= previous {
                return Merge::Ignore(
                    "an event already applied or older than the last one applied",
                );
            }
        }
        let mut call = match current {
            Some(call) => call.clone(),
            None => self.new_call(),
        };
        if let Some(status) = &self.status {
            if call.status.is_final() && !status.is_final() {
                return Merge::Ignore("a non-final status after a final one");
            }
            if status.is_final() && call.end_time.is_none() {
                call.end_time = self.timestamp;
            }
            call.status = status.clone();
        }
        if self.parent_call_sid.is_some() {
            call.parent_call_sid = self.parent_call_sid.clone();
        }
        if let Some(direction) = &self.direction {
            call.direction = direction.clone();
        }
        set(&mut call.account_sid, &self.account_sid);
        set(&mut call.from, &self.from);
        set(&mut call.to, &self.to);
        set(&mut call.answered_by, &self.answered_by);
        set(&mut call.forwarded_from, &self.forwarded_from);
        set(&mut call.caller_name, &self.caller_name);
        set(&mut call.api_version, &self.api_version);
        if self.call_duration.is_some() {
            call.duration = self.call_duration;
        }
        if let Some(at) = self.timestamp {
            if call.date_updated.is_none_or(|d| d < at) {
                call.date_updated = Some(at);
            }
        }
        call.refresh_raw();
        if let Value::Object(raw) = &mut call.raw {
            raw.insert(
                CALLBACK_KEY.to_owned(),
                json!({
                    "sequence_number": self.sequence_number.or(previous),
                    "call_status": self.status.as_ref().map(ToString::to_string),
                    "timestamp": self.timestamp.map(|t| t.to_rfc3339()),
                }),
            );
        }
        Merge::Apply(Box::new(call))
    }

    fn new_call(&self) -> Call {
        let mut call = Call::new(
            self.call_sid.clone(),
            self.status
                .clone()
                .unwrap_or_else(|| CallStatus::Other("unknown".into())),
            self.direction
                .clone()
                .unwrap_or_else(|| CallDirection::Other("unknown".into())),
        );
        call.start_time = self.timestamp.map(|t| {
            let talked = Duration::seconds(i64::from(self.call_duration.unwrap_or(0)));
            t.checked_sub_signed(talked).unwrap_or(t)
        });
        call.date_created = call.start_time;
        call
    }
}

fn set(field: &mut Option<String>, value: &Option<String>) {
    if value.is_some() {
        field.clone_from(value);
    }
}

/// The sequence number of the last callback applied to `call`, kept in its
/// raw record.
pub fn last_sequence(call: &Call) -> Option<u64> {
    call.raw.get(CALLBACK_KEY)?.get("sequence_number")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(status: &str, seq: &str) -> StatusCallback {
        StatusCallback::from_form([
            ("CallSid", "CA1"),
            ("CallStatus", status),
            ("SequenceNumber", seq),
            ("Timestamp", "Fri, 18 Oct 2019 17:02:00 +0000"),
            ("From", "+16175006181"),
            ("To", "+19788447773"),
            ("Direction", "inbound"),
        ])
        .unwrap()
    }

    fn applied(merge: Merge) -> Call {
        match merge {
            Merge::Apply(call) => *call,
            Merge::Ignore(why) => panic!("ignored: {why}"),
        }
    }

    #[test]
    fn events_in_order_then_late_and_replayed() {
        let ringing = applied(form("ringing", "1").merge(None));
        assert_eq!(ringing.status, CallStatus::Ringing);
        let done = applied(form("completed", "3").merge(Some(&ringing)));
        assert_eq!(done.status, CallStatus::Completed);
        assert!(done.end_time.is_some());
        assert_eq!(last_sequence(&done), Some(3));
        // The in-progress event arrives late: ignored.
        assert!(matches!(
            form("in-progress", "2").merge(Some(&done)),
            Merge::Ignore(_)
        ));
        // A replay: ignored.
        assert!(matches!(
            form("completed", "3").merge(Some(&done)),
            Merge::Ignore(_)
        ));
        // Without sequence numbers, a final status is still never regressed.
        let unnumbered =
            StatusCallback::from_form([("CallSid", "CA1"), ("CallStatus", "ringing")]).unwrap();
        assert!(matches!(unnumbered.merge(Some(&done)), Merge::Ignore(_)));
        // The raw record stays parseable and keeps the marker.
        let back = Call::from_json(&done.raw).unwrap();
        assert_eq!(back.status, CallStatus::Completed);
    }

    #[test]
    fn bad_fields_are_errors() {
        assert_eq!(
            StatusCallback::from_form([("CallStatus", "ringing")]),
            Err(CallbackError::MissingCallSid)
        );
        assert!(StatusCallback::from_form([("CallSid", "CA1"), ("CallDuration", "-3")]).is_err());
        assert!(StatusCallback::from_form([("CallSid", "CA1"), ("Timestamp", "soon")]).is_err());
        assert!(StatusCallback::from_form([("CallSid", "CA1"), ("SequenceNumber", "x")]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_forms_never_panic(
            fields in proptest::collection::vec(
                (proptest::sample::select(vec![
                    "CallSid", "CallStatus", "CallDuration", "Timestamp", "SequenceNumber",
                    "From", "To", "Direction", "ParentCallSid", "Other",
                ]), ".{0,40}"),
                0..12,
            )
        ) {
            if let Ok(cb) = StatusCallback::from_form(fields.iter().map(|(k, v)| (*k, v.as_str()))) {
                if let Merge::Apply(call) = cb.merge(None) {
                    let _ = cb.merge(Some(&call));
                }
            }
        }
    }
}
