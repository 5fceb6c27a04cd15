//! The compact form of a call's Twilio record: `messages.raw_zstd`.
//!
//! A call's record (what Twilio sent, without the URIs
//! [`callview_core::raw_uris`] rebuilds) is about 700 bytes of JSON, more
//! than half of a stored call. Most of it is the same in every record: the
//! key names, `2010-04-01`, `+0000`, the statuses and directions. The
//! SQLite store keeps it as one byte naming the format ([`FORMAT_V1`])
//! followed by a zstd frame compressed against [`PREFIX_V1`], a fixed text
//! shaped like a record, which zstd uses as history. That takes a record to
//! about 200 bytes; decoding gives back the exact JSON text that was
//! encoded.
//!
//! The prefix is part of the format: rows written with it can only be read
//! with it, so it never changes. A different one would be a new format
//! byte, with this one still read.
//!
//! PostgreSQL keeps the record in `metadata.raw` as JSONB, where people
//! query it; SQLite's `metadata` keeps every other key. Migration 13
//! converts the rows stored before it with the SQL function
//! `cv_raw_zstd` ([`register`]).

use std::cell::RefCell;
use std::sync::{Mutex, OnceLock, PoisonError};

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::stream::raw::CParameter;

/// The format byte of a zstd frame compressed against [`PREFIX_V1`].
pub const FORMAT_V1: u8 = 1;

/// The history [`FORMAT_V1`] compresses against: the keys of a Twilio call
/// record in the order callview writes them, with the values most records
/// share, then the other values Twilio's documentation lists for
/// `direction` and `status`, and the day and month names of its dates.
/// Never edited: see the module documentation.
pub const PREFIX_V1: &str = concat!(
    r#"{"account_sid":"AC","annotation":null,"answered_by":null,"api_version":"2010-04-01","#,
    r#""caller_name":null,"date_created":"Mon, 01 Jan 2024 00:00:00 +0000","#,
    r#""date_updated":"Mon, 01 Jan 2024 00:00:00 +0000","direction":"outbound-dial","#,
    r#""duration":"0","end_time":"Mon, 01 Jan 2024 00:00:00 +0000","forwarded_from":null,"#,
    r#""from":"+1","from_formatted":"(","group_sid":null,"parent_call_sid":null,"#,
    r#""phone_number_sid":"PN","price":"-0.0","price_unit":"USD","queue_time":"0","#,
    r#""sid":"CA","start_time":"Mon, 01 Jan 2024 00:00:00 +0000","status":"completed","#,
    r#""to":"+1","to_formatted":"(","trunk_sid":null}"#,
    " inbound outbound-api no-answer busy failed canceled in-progress ringing queued",
    " machine_start human fax unknown client: sip:",
    " Tue Wed Thu Fri Sat Sun Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
);

/// zstd's default level: at this size the higher ones gain a few bytes for
/// several times the time.
const LEVEL: i32 = 3;

/// The largest record a stored frame may claim to hold (a corrupt header
/// must not make the reader allocate gigabytes). Twilio's are a few KB.
const MAX_RECORD: u64 = 64 << 20;

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The value is empty.
    #[error("the compact record is empty")]
    Empty,
    /// The first byte names no format this version knows.
    #[error("the compact record has format {0}, which this version of callview cannot read")]
    UnknownFormat(u8),
    /// The frame does not say its size, or says more than [`MAX_RECORD`].
    #[error("the compact record's frame does not give a plausible size")]
    Size,
    /// zstd rejected the frame.
    #[error("the compact record does not decompress: {0}")]
    Zstd(std::io::Error),
    /// The bytes are not UTF-8 text.
    #[error("the compact record is not UTF-8 text")]
    Utf8,
}

fn encoder_dictionary() -> &'static EncoderDictionary<'static> {
    static DICTIONARY: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| EncoderDictionary::copy(PREFIX_V1.as_bytes(), LEVEL))
}

fn decoder_dictionary() -> &'static DecoderDictionary<'static> {
    static DICTIONARY: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    DICTIONARY.get_or_init(|| DecoderDictionary::copy(PREFIX_V1.as_bytes()))
}

/// The one compression context, made once (making one costs more than
/// compressing a record) and shared: records are encoded by the store's
/// single writer, and a context per thread would hold about a megabyte on
/// each thread the writer's work ever ran on.
static COMPRESSOR: Mutex<Option<Compressor<'static>>> = Mutex::new(None);

thread_local! {
    // Readers decode in parallel, each thread with its own context (about
    // 100 KB).
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The compact form of a record's JSON text. A record longer than
/// [`MAX_RECORD`] is refused here, where it is written, rather than stored
/// and refused by every read.
pub fn encode(json: &str) -> std::io::Result<Vec<u8>> {
    if json.len() as u64 > MAX_RECORD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "a Twilio record of {} bytes is longer than the {MAX_RECORD} bytes callview keeps",
                json.len()
            ),
        ));
    }
    // A panic while holding the lock leaves a context that is still whole
    // (each compression starts a new frame).
    let mut guard = COMPRESSOR.lock().unwrap_or_else(PoisonError::into_inner);
    let compressor = match &mut *guard {
        Some(compressor) => compressor,
        empty => {
            let mut compressor = Compressor::with_prepared_dictionary(encoder_dictionary())?;
            // Four bytes a record, so that a damaged value is an error
            // rather than a different record.
            compressor.set_parameter(CParameter::ChecksumFlag(true))?;
            empty.insert(compressor)
        }
    };
    let frame = compressor.compress(json.as_bytes())?;
    drop(guard);
    let mut out = Vec::with_capacity(frame.len() + 1);
    out.push(FORMAT_V1);
    out.extend_from_slice(&frame);
    Ok(out)
}

/// The JSON text [`encode`] was given.
pub fn decode(stored: &[u8]) -> Result<String, DecodeError> {
    let (&format, frame) = stored.split_first().ok_or(DecodeError::Empty)?;
    if format != FORMAT_V1 {
        return Err(DecodeError::UnknownFormat(format));
    }
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_RECORD => size as usize,
        _ => return Err(DecodeError::Size),
    };
    let bytes = DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match &mut *cell {
            Some(decompressor) => decompressor,
            empty => empty.insert(
                Decompressor::with_prepared_dictionary(decoder_dictionary())
                    .map_err(DecodeError::Zstd)?,
            ),
        };
        decompressor
            .decompress(frame, size)
            .map_err(DecodeError::Zstd)
    })?;
    String::from_utf8(bytes).map_err(|_| DecodeError::Utf8)
}

/// Registers `cv_raw_zstd(json_text)`, the SQL form of [`encode`] (NULL
/// for NULL), which migration 13 uses to convert older rows.
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "cv_raw_zstd",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let Some(json) = ctx.get::<Option<String>>(0)? else {
                return Ok(None);
            };
            encode(&json)
                .map(Some)
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the simulator and Twilio's documentation shape it.
    const RECORD: &str = r#"{"account_sid":"ACca23f2d88d65a60204af2d7bb49a6cfd","answered_by":null,"api_version":"2010-04-01","caller_name":null,"date_created":"Sat, 28 Nov 2026 13:24:48 +0000","date_updated":"Sat, 28 Nov 2026 13:32:29 +0000","direction":"inbound","duration":"28","end_time":"Sat, 28 Nov 2026 13:25:16 +0000","forwarded_from":null,"from":"+17742004788","from_formatted":"(774) 200-4788","group_sid":null,"parent_call_sid":null,"phone_number_sid":"PNe8feb78797dfdbd7815ad9410c00b127","price":"-0.00850","price_unit":"USD","queue_time":"0","sid":"CA0078d36172a3bf844c31eeec2e00d8d6","start_time":"Sat, 28 Nov 2026 13:24:48 +0000","status":"completed","to":"+16179330104","to_formatted":"(617) 933-0104","trunk_sid":null}"#;

    #[test]
    fn a_record_reads_back_as_the_same_text_in_a_third_of_the_bytes() {
        let stored = encode(RECORD).unwrap();
        assert_eq!(stored[0], FORMAT_V1);
        assert_eq!(decode(&stored).unwrap(), RECORD);
        assert!(
            stored.len() * 3 < RECORD.len(),
            "{} bytes for {}",
            stored.len(),
            RECORD.len()
        );
    }

    #[test]
    fn any_text_round_trips_including_empty_large_and_unlike_the_prefix() {
        let large = format!(r#"{{"caller_name":"{}"}}"#, "é😀x".repeat(100_000));
        for text in ["", "{}", "[1,2.50,null]", "ünïcödé", large.as_str()] {
            assert_eq!(decode(&encode(text).unwrap()).unwrap(), text);
        }
    }

    #[test]
    fn damaged_and_oversized_values_are_refused_not_misread() {
        let stored = encode(RECORD).unwrap();
        assert!(matches!(decode(&[]), Err(DecodeError::Empty)));
        let mut other = stored.clone();
        other[0] = 2;
        assert!(matches!(decode(&other), Err(DecodeError::UnknownFormat(2))));
        assert!(matches!(decode(&stored[..6]), Err(DecodeError::Size)));
        assert!(matches!(decode(b"\x01not zstd"), Err(DecodeError::Size)));
        // Any byte of the compressed body changed: the checksum, or zstd
        // itself, refuses the frame, or (a bit zstd never reads) the record
        // reads back whole; never a different record.
        let mut refused = 0;
        for at in 8..stored.len() {
            let mut damaged = stored.clone();
            damaged[at] ^= 0x20;
            match decode(&damaged) {
                Err(DecodeError::Zstd(_)) => refused += 1,
                Ok(text) => assert_eq!(text, RECORD, "byte {at} changed"),
                Err(e) => panic!("byte {at}: {e}"),
            }
        }
        assert!(refused * 10 >= (stored.len() - 8) * 9, "{refused}");
        let too_long = " ".repeat(MAX_RECORD as usize + 1);
        assert!(encode(&too_long).is_err());
    }

    /// Rows on disk were compressed against this exact prefix: a change to
    /// it would make them unreadable. (FNV-1a of its bytes.)
    #[test]
    fn the_prefix_of_format_1_never_changes() {
        let hash = PREFIX_V1.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!(
            hash, 2_290_525_220_413_383_388,
            "PREFIX_V1 changed: add a format instead"
        );
    }
}
