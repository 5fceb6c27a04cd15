//! `callview_core::import::read_calls`: every accepted form, positions of
//! bad records, and the errors for input that is not a call dump.

use std::ops::ControlFlow;

use callview_core::import::{read_calls, ImportError, InputForm, Position, ReadSummary};
use callview_core::{Call, CallStatus};

/// What the callback saw: positions with the call or the reason.
type Seen = Vec<(Position, Result<Call, String>)>;

fn read(input: &str) -> (Result<ReadSummary, ImportError>, Seen) {
    let mut seen = Vec::new();
    let result = read_calls(input.as_bytes(), |position, record| {
        seen.push((position, record.map_err(|e| e.reason)));
        ControlFlow::Continue(())
    });
    (result, seen)
}

fn sids(seen: &Seen) -> Vec<String> {
    seen.iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|c| c.sid.to_string()))
        .collect()
}

const CLI_RECORD: &str = r#"{
    "sid": "CA5bef499f976fd46ea521f3da237abf27",
    "accountSid": "AC1",
    "parentCallSid": null,
    "from": "+16175006181",
    "to": "+19788447773",
    "status": "completed",
    "direction": "inbound",
    "startTime": "2026-02-06T15:17:13.000Z",
    "endTime": "2026-02-06T15:17:53.000Z",
    "duration": "40",
    "price": "-0.01400",
    "dateUpdated": "2026-02-06T15:17:53.000Z"
  }"#;

const REST_RECORD: &str = r#"{"sid": "CA5bef499f976fd46ea521f3da237abf27", "account_sid": "AC1", "parent_call_sid": null, "from": "+16175006181", "to": "+19788447773", "status": "completed", "direction": "inbound", "start_time": "Fri, 06 Feb 2026 15:17:13 +0000", "end_time": "Fri, 06 Feb 2026 15:17:53 +0000", "duration": "40", "price": "-0.01400", "date_updated": "Fri, 06 Feb 2026 15:17:53 +0000"}"#;

/// The typed fields (not the raw record, which keeps its form).
fn typed(call: &Call) -> Call {
    Call {
        raw: serde_json::Value::Null,
        ..call.clone()
    }
}

#[test]
fn cli_array_of_camel_case_records() {
    let input = format!("[\n  {CLI_RECORD},\n  {{\"sid\": \"CA2\", \"status\": \"busy\"}}\n]\n");
    let (result, seen) = read(&input);
    let summary = result.unwrap();
    assert_eq!(summary.form, InputForm::Array);
    assert_eq!(summary.records, 2);
    assert_eq!(summary.bytes, input.len() as u64);
    assert_eq!(sids(&seen), ["CA5bef499f976fd46ea521f3da237abf27", "CA2"]);
    let call = seen[0].1.as_ref().unwrap();
    assert_eq!(call.duration, Some(40));
    assert_eq!(call.raw["startTime"], "2026-02-06T15:17:13.000Z");
    assert_eq!(seen[0].0, Position { record: 1, line: 2 });
    assert_eq!(
        seen[1].0,
        Position {
            record: 2,
            line: 16
        }
    );
    assert_eq!(seen[1].1.as_ref().unwrap().status, CallStatus::Busy);
}

#[test]
fn rest_page_envelope_and_rest_array_give_the_same_calls_as_the_cli_form() {
    let page = format!(
        r#"{{"first_page_uri": "/x", "end": 1, "calls": [{REST_RECORD}, {{"sid": "CA2"}}], "next_page_uri": null, "page": 0, "meta": {{"key": "calls"}}}}"#
    );
    let (result, from_page) = read(&page);
    assert_eq!(result.unwrap().form, InputForm::Page);
    assert_eq!(
        sids(&from_page),
        ["CA5bef499f976fd46ea521f3da237abf27", "CA2"]
    );

    let (result, from_array) = read(&format!("[{REST_RECORD}]"));
    assert_eq!(result.unwrap().form, InputForm::Array);
    let (_, from_cli) = read(&format!("[{CLI_RECORD}]"));
    let rest = typed(from_array[0].1.as_ref().unwrap());
    assert_eq!(rest, typed(from_page[0].1.as_ref().unwrap()));
    assert_eq!(rest, typed(from_cli[0].1.as_ref().unwrap()));
}

#[test]
fn json_lines_of_records_in_either_form() {
    let cli_one_line: String = CLI_RECORD.split_whitespace().collect::<Vec<_>>().join(" ");
    let input = format!(
        "{REST_RECORD}\n{}\n\n{{\"sid\": \"CA3\", \"startTime\": \"2026-02-07T00:00:00Z\"}}\n",
        cli_one_line.replace("CA5bef499f976fd46ea521f3da237abf27", "CA2")
    );
    let (result, seen) = read(&input);
    let summary = result.unwrap();
    assert_eq!(summary.form, InputForm::JsonLines);
    assert_eq!(summary.records, 3);
    assert_eq!(
        sids(&seen),
        ["CA5bef499f976fd46ea521f3da237abf27", "CA2", "CA3"]
    );
    let lines: Vec<u64> = seen.iter().map(|(p, _)| p.line).collect();
    assert_eq!(lines, [1, 2, 4]);
}

#[test]
fn json_lines_of_page_envelopes_number_records_across_pages() {
    let input =
        "{\"calls\": [{\"sid\": \"CA1\"}, {\"sid\": \"CA2\"}], \"next_page_uri\": \"/p1\"}\n\
                 {\"next_page_uri\": null, \"calls\": [{\"sid\": \"CA3\"}]}\n\
                 {\"calls\": []}\n";
    let (result, seen) = read(input);
    let summary = result.unwrap();
    assert_eq!(summary.form, InputForm::JsonLines);
    assert_eq!(sids(&seen), ["CA1", "CA2", "CA3"]);
    let positions: Vec<(u64, u64)> = seen.iter().map(|(p, _)| (p.record, p.line)).collect();
    assert_eq!(positions, [(1, 1), (2, 1), (3, 2)]);
}

#[test]
fn concatenated_arrays_are_read_in_turn() {
    let (result, seen) = read("[{\"sid\": \"CA1\"}]\n[{\"sid\": \"CA2\"}]\n");
    assert_eq!(result.unwrap().form, InputForm::JsonLines);
    assert_eq!(sids(&seen), ["CA1", "CA2"]);
    // Pretty-printed dumps one after the other (`cat a.json b.json`).
    let (result, seen) =
        read("[\n  {\"sid\": \"CA1\"}\n]\n{\n  \"calls\": [\n    {\"sid\": \"CA2\"}\n  ]\n}\n");
    result.unwrap();
    assert_eq!(sids(&seen), ["CA1", "CA2"]);
    assert_eq!(seen[1].0, Position { record: 2, line: 6 });
    // ... followed by something else: an error, after what was read.
    let (result, seen) = read("[\n  {\"sid\": \"CA1\"}\n]\nEOF\n");
    assert_eq!(sids(&seen), ["CA1"]);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Malformed {
                line: 4,
                column: 1,
                records: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_bad_record_in_the_middle_is_reported_with_its_position_and_the_rest_kept() {
    let input = "[\n{\"sid\": \"CA1\"},\n{\"sid\": \"CA2\", \"startTime\": \"soon\"},\n{\"status\": \"busy\"},\n42,\n{\"sid\": \"CA5\"}\n]";
    let (result, seen) = read(input);
    assert_eq!(result.unwrap().records, 5);
    assert_eq!(sids(&seen), ["CA1", "CA5"]);
    let bad: Vec<(u64, u64, &str)> = seen
        .iter()
        .filter_map(|(p, r)| r.as_ref().err().map(|e| (p.record, p.line, e.as_str())))
        .collect();
    assert_eq!(bad.len(), 3);
    assert_eq!((bad[0].0, bad[0].1), (2, 3));
    assert!(bad[0].2.contains("start_time"), "{}", bad[0].2);
    assert_eq!((bad[1].0, bad[1].1), (3, 4));
    assert!(bad[1].2.contains("sid"), "{}", bad[1].2);
    assert_eq!((bad[2].0, bad[2].1), (4, 5));
    assert!(bad[2].2.contains("object"), "{}", bad[2].2);
}

#[test]
fn a_garbled_line_of_json_lines_is_one_bad_record() {
    let input = "{\"sid\": \"CA1\"}\n{\"sid\": \"CA2\", oops}\n{\"sid\": \"CA3\n{\"sid\": \"CA4\"}\nnot json at all\n\"a string\"\n{\"sid\": \"CA7\"}";
    let (result, seen) = read(input);
    let summary = result.unwrap();
    assert_eq!(summary.records, 7);
    assert_eq!(sids(&seen), ["CA1", "CA4", "CA7"]);
    let bad: Vec<(u64, u64)> = seen
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(p, _)| (p.record, p.line))
        .collect();
    assert_eq!(bad, [(2, 2), (3, 3), (5, 5), (6, 6)]);
    let (_, reason) = &seen[1];
    assert!(reason.as_ref().unwrap_err().contains("not valid JSON"));
}

#[test]
fn input_that_is_not_json_is_an_error_before_any_record() {
    for (input, needle) in [
        ("hello, world", "`h`"),
        ("\u{0}\u{1}binary", "0x00"),
        ("42", "`4`"),
        ("\"just a string\"", "`\"`"),
        (
            "{\"name\": \"package\", \"version\": \"1\"}",
            "neither `calls`",
        ),
        ("{\"recordings\": []}", "recordings"),
    ] {
        let (result, seen) = read(input);
        let err = result.unwrap_err();
        assert!(
            matches!(err, ImportError::Unsupported { .. }),
            "{input:?}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(needle), "{input:?}: {text}");
        assert!(text.contains("twilio api:core:calls:list"), "{text}");
        assert!(seen.is_empty(), "{input:?}");
    }
    let (result, seen) = read("  \n\t ");
    assert!(matches!(result, Err(ImportError::Empty)));
    assert!(seen.is_empty());
    let (result, seen) = read("{this is not json");
    assert!(
        matches!(result, Err(ImportError::Malformed { records: 0, .. })),
        "{result:?}"
    );
    assert!(seen.is_empty());
}

#[test]
fn a_truncated_array_is_an_error_with_its_position_after_the_records_before_it() {
    let input =
        "[\n  {\"sid\": \"CA1\"},\n  {\"sid\": \"CA2\"},\n  {\"sid\": \"CA3\", \"status\": \"comp";
    let (result, seen) = read(input);
    assert_eq!(sids(&seen), ["CA1", "CA2"]);
    match result.unwrap_err() {
        ImportError::Malformed {
            line,
            column,
            records,
            reason,
        } => {
            assert_eq!((line, column), (4, 32));
            assert_eq!(records, 2);
            assert!(reason.contains("EOF"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // Garbled (not truncated) in the middle of a pretty-printed array.
    let input = "[\n  {\"sid\": \"CA1\"},\n  {\"sid\": \"CA2\"} {\"sid\": \"CA3\"}\n]";
    let (result, seen) = read(input);
    assert_eq!(sids(&seen), ["CA1", "CA2"]);
    let err = result.unwrap_err();
    assert!(
        matches!(err, ImportError::Malformed { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn a_read_error_is_an_io_error() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let text = b"[{\"sid\": \"CA1\"}, {\"sid\": ";
            if self.0 >= text.len() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(text.len() - self.0);
            buf[..n].copy_from_slice(&text[self.0..self.0 + n]);
            self.0 += n;
            Ok(n)
        }
    }
    let mut seen = 0;
    let result = read_calls(Failing(0), |_, _| {
        seen += 1;
        ControlFlow::Continue(())
    });
    let err = result.unwrap_err();
    assert!(matches!(err, ImportError::Io(_)), "{err}");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(seen, 1);
}

#[test]
fn a_large_array_is_read_record_by_record() {
    // 50,000 records through a reader that never holds them all: the
    // callback sees each one before the next is produced.
    struct Generated {
        next: u64,
        total: u64,
        pending: Vec<u8>,
    }
    impl std::io::Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pending.is_empty() {
                if self.next > self.total {
                    return Ok(0);
                }
                self.pending = if self.next == 0 {
                    b"[".to_vec()
                } else if self.next == self.total {
                    format!("{{\"sid\": \"CA{}\"}}]", self.next).into_bytes()
                } else {
                    format!("{{\"sid\": \"CA{}\"}},\n", self.next).into_bytes()
                };
                self.next += 1;
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }
    let mut count = 0u64;
    let summary = read_calls(
        Generated {
            next: 0,
            total: 50_000,
            pending: Vec::new(),
        },
        |position, record| {
            count += 1;
            assert_eq!(position.record, count);
            assert_eq!(position.line, count);
            assert_eq!(record.unwrap().sid.to_string(), format!("CA{count}"));
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(summary.records, 50_000);
    assert_eq!(count, 50_000);
}
