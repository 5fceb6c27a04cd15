//! The URIs of a Twilio call record that follow from its account and call
//! SIDs: `uri` and `subresource_uris` (about 1.5 KB of a 2.4 KB record).
//!
//! The stores keep a call's record exactly (`messages.metadata.raw`;
//! SQLite compressed, in a column of its own) but not wastefully: when every one of those URIs is the one Twilio derives
//! from the SIDs, the record is stored without them and
//! `metadata.raw_uris` lists the keys of `subresource_uris` in their
//! order, or is `"standard"` for the eleven Twilio sends today
//! ([`STANDARD`]); reading the row rebuilds them, so the record read back is equal,
//! as a JSON value, to what Twilio sent. A record with any URI that does
//! not follow the pattern (another API version, a key this module does not
//! know how to derive, a value of another type) is stored whole.
//!
//! ```
//! use callview_core::raw_uris;
//! use serde_json::json;
//!
//! let base = "/2010-04-01/Accounts/AC1/Calls/CA1";
//! let record = json!({
//!     "sid": "CA1", "account_sid": "AC1", "status": "completed",
//!     "uri": format!("{base}.json"),
//!     "subresource_uris": {"recordings": format!("{base}/Recordings.json")},
//! });
//! let keys = raw_uris::derivable(&record);
//! assert_eq!(keys, Some(vec!["recordings"]));
//! let stored = serde_json::to_value(raw_uris::Stored::new(&record, keys.as_deref())).unwrap();
//! assert_eq!(stored, json!({"sid": "CA1", "account_sid": "AC1", "status": "completed"}));
//!
//! let mut metadata = json!({"raw": stored, "raw_uris": keys});
//! assert_eq!(raw_uris::take_raw(&mut metadata), Some(record));
//! ```

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The `metadata` key listing the elided `subresource_uris` keys.
pub const MARKER: &str = "raw_uris";

/// The value of [`MARKER`] for a record whose `subresource_uris` has
/// exactly the keys Twilio sends today ([`STANDARD_KEYS`], in this order).
pub const STANDARD: &str = "standard";

/// The sub-resources of a call record from Twilio today, in byte order
/// (the order callview writes a record's keys in).
pub const STANDARD_KEYS: [&str; 11] = [
    "events",
    "feedback",
    "feedback_summaries",
    "notifications",
    "payments",
    "recordings",
    "siprec",
    "streams",
    "transcriptions",
    "user_defined_message_subscriptions",
    "user_defined_messages",
];

/// The value of [`MARKER`] for the keys [`derivable`] found.
pub fn marker(keys: &[&str]) -> serde_json::Value {
    if keys == STANDARD_KEYS {
        Value::String(STANDARD.to_owned())
    } else {
        serde_json::json!(keys)
    }
}

/// The API version of every derivable URI.
const PREFIX: &str = "/2010-04-01/Accounts/";

/// The URI Twilio gives a call's sub-resource `key`: the resource's name in
/// CamelCase under the call (`user_defined_messages` →
/// `UserDefinedMessages.json`), except the account-wide feedback summary.
pub fn subresource_uri(account: &str, sid: &str, key: &str) -> Option<String> {
    if key == "feedback_summaries" {
        return Some(format!("{PREFIX}{account}/Calls/FeedbackSummary.json"));
    }
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    let mut name = String::with_capacity(key.len());
    for part in key.split('_') {
        let mut chars = part.chars();
        let first = chars.next()?;
        name.push(first.to_ascii_uppercase());
        name.push_str(chars.as_str());
    }
    Some(format!("{PREFIX}{account}/Calls/{sid}/{name}.json"))
}

/// The call's own URI.
pub fn call_uri(account: &str, sid: &str) -> String {
    format!("{PREFIX}{account}/Calls/{sid}.json")
}

/// The keys of `record`'s `subresource_uris`, in order, when its `uri` and
/// every one of those URIs are the ones derived from its SIDs; `None` when
/// the record keeps them (one is not derivable, or the record has no `uri`
/// or no `subresource_uris` object).
pub fn derivable(record: &Value) -> Option<Vec<&str>> {
    let map = record.as_object()?;
    let account = map.get("account_sid")?.as_str()?;
    let sid = map.get("sid")?.as_str()?;
    let uri = map.get("uri")?.as_str()?;
    let subresources = map.get("subresource_uris")?.as_object()?;
    if uri != call_uri(account, sid) {
        return None;
    }
    subresources
        .iter()
        .map(|(key, value)| {
            let derived = subresource_uri(account, sid, key)?;
            (value.as_str() == Some(derived.as_str())).then_some(key.as_str())
        })
        .collect()
}

/// A record as stored: without `uri` and `subresource_uris` when `elided`
/// holds the keys [`derivable`] found, whole otherwise. Serializes the
/// borrowed record (no copy).
pub struct Stored<'a> {
    record: &'a Value,
    elide: bool,
}

impl<'a> Stored<'a> {
    /// The stored form of `record`, given what [`derivable`] said.
    pub fn new(record: &'a Value, elided: Option<&[&str]>) -> Self {
        Self {
            record,
            elide: elided.is_some(),
        }
    }
}

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.record {
            Value::Object(map) if self.elide => {
                let mut out = serializer.serialize_map(Some(map.len().saturating_sub(2)))?;
                for (key, value) in map {
                    if key != "uri" && key != "subresource_uris" {
                        out.serialize_entry(key, value)?;
                    }
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Moves the record out of a stored `metadata` object, rebuilding the URIs
/// its [`MARKER`] says were left out. `None` when there is no record.
pub fn take_raw(metadata: &mut Value) -> Option<Value> {
    let metadata = metadata.as_object_mut()?;
    let mut raw = match metadata.get_mut("raw") {
        Some(raw) if !raw.is_null() => raw.take(),
        _ => return None,
    };
    if let Value::Object(record) = &mut raw {
        match metadata.get(MARKER) {
            Some(Value::Array(keys)) => restore(record, keys.iter().filter_map(Value::as_str)),
            Some(Value::String(s)) if s == STANDARD => restore(record, STANDARD_KEYS),
            _ => {}
        }
    }
    Some(raw)
}

/// Puts back the URIs of a record stored without them.
fn restore<'k>(record: &mut Map<String, Value>, keys: impl IntoIterator<Item = &'k str>) {
    let (Some(Value::String(account)), Some(Value::String(sid))) =
        (record.get("account_sid"), record.get("sid"))
    else {
        return;
    };
    let (account, sid) = (account.clone(), sid.clone());
    let mut subresources = Map::new();
    for key in keys {
        if let Some(uri) = subresource_uri(&account, &sid, key) {
            subresources.insert(key.to_owned(), Value::String(uri));
        }
    }
    record.insert("uri".into(), Value::String(call_uri(&account, &sid)));
    record.insert("subresource_uris".into(), Value::Object(subresources));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// A record in the shape Twilio sends (the simulator's keys).
    fn twilio_record(account: &str, sid: &str) -> Value {
        let base = format!("/2010-04-01/Accounts/{account}/Calls/{sid}");
        let mut subresources = Map::new();
        for (key, name) in [
            ("feedback", "Feedback"),
            ("user_defined_messages", "UserDefinedMessages"),
            ("notifications", "Notifications"),
            ("recordings", "Recordings"),
            ("streams", "Streams"),
            ("payments", "Payments"),
            (
                "user_defined_message_subscriptions",
                "UserDefinedMessageSubscriptions",
            ),
            ("siprec", "Siprec"),
            ("events", "Events"),
        ] {
            subresources.insert(key.into(), json!(format!("{base}/{name}.json")));
        }
        subresources.insert(
            "feedback_summaries".into(),
            json!(format!(
                "/2010-04-01/Accounts/{account}/Calls/FeedbackSummary.json"
            )),
        );
        json!({
            "sid": sid, "account_sid": account, "status": "completed",
            "from": "+15551230000", "to": "+15559870000", "price": "-0.01400",
            "start_time": "Fri, 18 Oct 2019 17:02:00 +0000",
            "uri": format!("{base}.json"),
            "subresource_uris": subresources,
        })
    }

    /// Stores `record` the way the stores do and reads it back.
    fn round_trip(record: &Value) -> (String, Value) {
        let keys = derivable(record);
        let mut metadata = Map::new();
        metadata.insert(
            "raw".into(),
            serde_json::to_value(Stored::new(record, keys.as_deref())).unwrap(),
        );
        if let Some(keys) = &keys {
            metadata.insert(MARKER.into(), marker(keys));
        }
        let text = Value::Object(metadata).to_string();
        let mut read: Value = serde_json::from_str(&text).unwrap();
        (text, take_raw(&mut read).unwrap())
    }

    #[test]
    fn a_real_shaped_record_loses_its_uris_and_gets_them_back() {
        let record = twilio_record("AC0123456789abcdef0123456789abcdef", "CA00ff");
        let (text, read) = round_trip(&record);
        assert!(!text.contains("Calls/CA00ff.json"), "{text}");
        assert!(!text.contains("Recordings.json"), "{text}");
        assert!(text.len() < record.to_string().len() / 2 + 200, "{text}");
        assert_eq!(read, record);
    }

    #[test]
    fn the_standard_set_is_one_word() {
        let account = "AC0123456789abcdef0123456789abcdef";
        let mut record = twilio_record(account, "CA1");
        record["subresource_uris"]["transcriptions"] = json!(format!(
            "/2010-04-01/Accounts/{account}/Calls/CA1/Transcriptions.json"
        ));
        let (text, read) = round_trip(&record);
        assert!(text.contains(r#""raw_uris":"standard""#), "{text}");
        assert_eq!(read, record);
        let mut sorted = STANDARD_KEYS;
        sorted.sort_unstable();
        assert_eq!(
            sorted, STANDARD_KEYS,
            "in the order a record's keys are written"
        );
    }

    #[test]
    fn underivable_uris_keep_the_record_whole() {
        let good = twilio_record("AC1", "CA1");
        let cases = [
            ("uri", json!("/2010-04-01/Accounts/AC1/Calls/CA2.json")),
            ("uri", json!(null)),
            (
                "subresource_uris",
                json!({"recordings": "/other/Recordings.json"}),
            ),
            ("subresource_uris", json!({"Weird-Key": "/x"})),
            ("subresource_uris", json!({"recordings": 3})),
            ("subresource_uris", json!([])),
            ("account_sid", json!(7)),
        ];
        for (key, value) in cases {
            let mut record = good.clone();
            record[key] = value;
            assert_eq!(derivable(&record), None, "{key}");
            let (text, read) = round_trip(&record);
            assert!(!text.contains(MARKER), "{text}");
            assert_eq!(read, record, "{key}");
        }
        let mut no_subresources = good.clone();
        no_subresources
            .as_object_mut()
            .unwrap()
            .remove("subresource_uris");
        assert_eq!(round_trip(&no_subresources).1, no_subresources);
        assert_eq!(
            round_trip(&json!("not an object")).1,
            json!("not an object")
        );
    }

    #[test]
    fn an_empty_subresource_list_round_trips() {
        let mut record = twilio_record("AC1", "CA1");
        record["subresource_uris"] = json!({});
        let (text, read) = round_trip(&record);
        assert!(text.contains("\"raw_uris\":[]"), "{text}");
        assert_eq!(read, record);
    }

    #[test]
    fn rows_written_before_the_marker_read_as_they_are() {
        let record = twilio_record("AC1", "CA1");
        let mut metadata = json!({"raw": record.clone(), "display_status": "completed"});
        assert_eq!(take_raw(&mut metadata), Some(record));
        assert_eq!(take_raw(&mut json!({"raw": null})), None);
        assert_eq!(take_raw(&mut json!([])), None);
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("feedback_summaries".to_owned()),
            "[a-z]{1,8}(_[a-z]{1,8}){0,3}",
            "[A-Za-z_\\-]{0,6}",
        ]
    }

    proptest! {
        /// Any record (derivable or not, valid or not) reads back equal.
        #[test]
        fn any_record_reads_back_equal(
            account in "AC[0-9a-f]{0,6}",
            sid in "CA[0-9a-f]{0,6}",
            keys in proptest::collection::vec((key(), any::<u8>()), 0..6),
            uri_kind in 0u8..4,
            extra in proptest::collection::btree_map("[a-z_]{1,10}", "[ -~]{0,12}", 0..5),
        ) {
            let mut record = Map::new();
            for (k, v) in extra {
                record.insert(k, json!(v));
            }
            record.insert("sid".into(), json!(sid));
            record.insert("account_sid".into(), json!(account));
            let uri = call_uri(&account, &sid);
            match uri_kind {
                0 => { record.insert("uri".into(), json!(uri)); }
                1 => { record.insert("uri".into(), json!(format!("{uri}?x"))); }
                2 => { record.remove("uri"); }
                _ => { record.insert("uri".into(), Value::Null); }
            }
            let mut subresources = Map::new();
            for (key, twist) in keys {
                let value = match (subresource_uri(&account, &sid, &key), twist % 4) {
                    (Some(derived), 0..=2) => json!(derived),
                    (Some(derived), _) => json!(format!("{derived}x")),
                    (None, _) => json!(format!("/{key}.json")),
                };
                subresources.insert(key, value);
            }
            record.insert("subresource_uris".into(), Value::Object(subresources));
            let record = Value::Object(record);
            let (_, read) = round_trip(&record);
            prop_assert_eq!(read, record);
        }
    }
}
