//! The OpenAPI 3.1 description of the API, served at `/api/openapi.json`.

use std::sync::OnceLock;

use serde_json::{json, Value};

use callview_core::annotations::{
    MAX_COMPANY_CHARS, MAX_NAME_CHARS, MAX_NOTES_CHARS, MAX_TAGS, MAX_TAG_CHARS,
};
use callview_core::export::ExportFormat;
use callview_core::store::{MessageCursor, MessageQuery};

use crate::params::{DEFAULT_ACTIVE_LIMIT, DEFAULT_LIMIT, MAX_LIMIT, MAX_SEARCH_CHARS};

/// The OpenAPI 3.1 document (built once).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn ok_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn limit_param(default: Option<u32>, description: &str) -> Value {
    let mut schema = json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT});
    if let Some(d) = default {
        schema["default"] = json!(d);
    }
    json!({
        "name": "limit", "in": "query", "required": false,
        "description": description,
        "schema": schema
    })
}

fn type_param(description: &str) -> Value {
    json!({
        "name": "type", "in": "query", "required": false,
        "description": description,
        "schema": {"type": "string", "enum": ["all", "call", "sms"], "default": "all"}
    })
}

fn offset_param() -> Value {
    json!({
        "name": "offset", "in": "query", "required": false,
        "description": "How many entries to skip (0 or more).",
        "schema": {"type": "integer", "minimum": 0, "default": 0}
    })
}

fn cursor_param() -> Value {
    json!({
        "name": "cursor", "in": "query", "required": false,
        "description": "Where the page starts: the `next_cursor` of the previous page, passed back unchanged (an opaque, URL-safe string). Keyset pagination: a page after a cursor costs what the first page does, however deep, and rows written between two requests are never listed twice. Give the same filters with each page. Not together with an `offset` above 0; absent or empty means the first page.",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "maxLength": 64}
    })
}

/// The filters of `GET /api/conversations`.
fn conversation_filter_params() -> Vec<Value> {
    let instant = |name: &str, description: &str| {
        json!({
            "name": name, "in": "query", "required": false,
            "description": description,
            "schema": {"oneOf": [
                {"type": "integer", "description": "Unix milliseconds."},
                {"type": "string", "format": "date-time"}
            ]},
            "examples": {"millis": {"value": 1770391033000_i64}, "rfc3339": {"value": "2026-02-06T15:17:13Z"}}
        })
    };
    vec![
        json!({
            "name": "q", "in": "query", "required": false,
            "description": format!("A number in any format (`(978) 844-7773`, `978.844.7773`, `+1 978 844 7773`, or a part such as `844-77`; numbers without a country code are read in the server's default region) or a word; case-insensitive, any part of a word. Matches the contact's number (its E.164 key), name, display form, company name, notes and tags, and the notes and tags of its calls. At most {MAX_SEARCH_CHARS} characters; empty means no search."),
            "schema": {"type": "string", "maxLength": MAX_SEARCH_CHARS}
        }),
        json!({
            "name": "direction", "in": "query", "required": false,
            "description": "Only conversations whose newest call has this actual direction.",
            "schema": {"type": "string", "enum": ["inbound", "outbound", "internal"]}
        }),
        json!({
            "name": "status", "in": "query", "required": false,
            "description": "Only conversations whose newest call's display status is in the group: `missed` (no-answer, busy, failed, canceled), `answered` (completed), `in-progress` (queued, initiated, ringing, in-progress), or exactly `no-answer`, `busy`, `failed`, `canceled`.",
            "schema": {"type": "string", "enum": ["missed", "answered", "in-progress", "no-answer", "busy", "failed", "canceled"]}
        }),
        instant("since", "Only conversations whose last activity (`last_message_at`) is at or after this instant."),
        instant("until", "Only conversations whose last activity is before this instant (not after `since`)."),
        json!({
            "name": "tag", "in": "query", "required": false,
            "description": "Only conversations whose contact, or one of whose calls, carries this tag (whole tag, case-insensitive).",
            "schema": {"type": "string", "maxLength": MAX_TAG_CHARS}
        }),
        json!({
            "name": "has_recording", "in": "query", "required": false,
            "description": "`true`: only conversations with a recorded call (one Twilio still has).",
            "schema": {"type": "boolean"}
        }),
        type_param("`call`: only conversations with a call; `sms`: only those with a text (SMS or MMS)."),
    ]
}

/// `GET /api/export/calls.csv` or `.jsonl`: the list's filters, with
/// `since`/`until` on each call's start time.
fn export_operation(format: ExportFormat, common_errors: &dyn Fn(Value) -> Value) -> Value {
    let mut params: Vec<Value> = conversation_filter_params()
        .into_iter()
        .filter(|p| p["name"] != "since" && p["name"] != "until")
        .collect();
    for (name, description) in [
        ("since", "Only calls that started at or after this instant (calls never dialled have no start time and are left out)."),
        ("until", "Only calls that started before this instant (not before `since`)."),
    ] {
        params.push(json!({
            "name": name, "in": "query", "required": false,
            "description": description,
            "schema": {"oneOf": [
                {"type": "integer", "description": "Unix milliseconds."},
                {"type": "string", "format": "date-time"}
            ]},
            "examples": {"millis": {"value": 1770391033000_i64}, "rfc3339": {"value": "2026-02-06T15:17:13Z"}}
        }));
    }
    let columns = callview_core::export::CSV_COLUMNS.join(", ");
    let (operation_id, summary, content) = match format {
        ExportFormat::Csv => (
            "exportCallsCsv",
            "Every call the filters keep, legs included, as CSV (one row per Twilio call, a header row first).",
            json!({"text/csv": {"schema": {"type": "string"}}}),
        ),
        ExportFormat::JsonLines => (
            "exportCallsJsonl",
            "Every call the filters keep, legs included, as JSON Lines (one object per Twilio call, with `raw`: the Twilio record, which `callview import` reads back).",
            json!({"application/x-ndjson": {"schema": {"type": "string"}}}),
        ),
    };
    let mut responses = common_errors(json!({
        "200": {"description": "The export, streamed.", "content": content},
        "400": error_response("`q`, `direction`, `status`, `tag`, `has_recording`, `since` or `until` is not valid, `since` is after `until`, or `limit`, `offset` or `cursor` is given (`invalid_parameter`); the message names the parameter."),
    }));
    // No request timeout.
    if let Some(map) = responses.as_object_mut() {
        map.remove("503");
    }
    json!({
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": format!("Columns: {columns}. The conversation filters (`q`, `direction`, `status`, `tag`, `has_recording`) apply to each call's conversation, exactly as in `GET /api/conversations`; `since`/`until` to each call's start time. Times are RFC 3339 in UTC; a root call's `talk_time`/`wait_time` are its interaction's, a leg's talk time is its own duration (no wait). Tags are joined with `; ` in CSV. Streamed page by page (an attachment named `callview-calls-YYYY-MM-DD.{}`), without the 30 s request timeout; a failure after the first bytes breaks the transfer.", format.extension()),
            "tags": ["calls"],
            "parameters": params,
            "responses": responses
        }
    })
}

fn id_param() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": "The conversation's id (a positive whole number).",
        "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"}
    })
}

fn row_id_param(what: &str) -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "description": format!("The {what}'s id (a positive whole number)."),
        "schema": {"type": "string", "pattern": "^[1-9][0-9]*$"}
    })
}

fn if_match_param() -> Value {
    json!({
        "name": "If-Match", "in": "header", "required": false,
        "description": "The `ETag` of the version being edited (such as `\"3\"`); `*` or absent: no check.",
        "schema": {"type": "string"}
    })
}

fn sync_operation(summary: &str, description: &str, operation_id: &str) -> Value {
    json!({
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["sync"],
            "responses": {
                "200": ok_response("The sync finished.", "SyncResult"),
                "401": error_response("Missing or wrong bearer token (`unauthorized`)."),
                "403": error_response("Syncs need the admin role (`forbidden`)."),
                "429": error_response("Too many failed authentications from this address (`too_many_attempts`); `Retry-After` says when to try again."),
                "409": error_response("Another sync is running (`sync_in_progress`); try again when it has finished."),
                "500": error_response("The database failed during the sync (`sync_failed`)."),
                "502": error_response("Twilio failed or rejected the credentials (`sync_failed`); the message says why."),
                "503": error_response("No Twilio account is configured (`sync_unavailable`), the server is shutting down (`shutting_down`), or the request took longer than 30 s (`timeout`; the sync goes on)."),
            }
        }
    })
}

fn build() -> Value {
    let call_direction = json!({
        "type": "string",
        "description": "Twilio's direction: inbound, outbound-api, outbound-dial, trunking-terminating, trunking-originating; values Twilio adds later are passed through.",
        "examples": ["inbound", "outbound-api", "outbound-dial"]
    });
    let call_status = json!({
        "type": "string",
        "description": "Twilio's status: queued, initiated, ringing, in-progress, completed, busy, no-answer, canceled, failed; values Twilio adds later are passed through.",
        "examples": ["completed", "no-answer", "in-progress"]
    });
    let common_errors = |mut responses: Value| {
        responses["401"] = error_response("Missing or wrong bearer token (`unauthorized`).");
        responses["429"] = error_response(
            "Too many failed authentications from this address (`too_many_attempts`); `Retry-After` says when to try again.",
        );
        responses["500"] =
            error_response("The database failed (`internal`); details are only in the server log.");
        responses["503"] = error_response("The request took longer than 30 s (`timeout`).");
        responses
    };

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "callview API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A business's Twilio call history as conversations: one conversation per outside party, one message per call with its forwarded and transferred legs folded in. Ids are strings; the models' timestamps are Unix milliseconds; an embedded Call's times are ISO 8601. Every error is `{\"error\": {\"code\", \"message\"}}`. When the server has an API token or stored tokens, every `/api` route needs `Authorization: Bearer <token>`, and a role: `viewer` reads, `editor` also edits contacts, notes and tags, `admin` also runs syncs and manages tokens; a token below a route's role gets 403 `forbidden` naming the role needed. Each route's description says the role it needs when it is more than `viewer`."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {}],
        "tags": [
            {"name": "conversations"}, {"name": "calls"}, {"name": "texts"}, {"name": "sync"}, {"name": "meta"}, {"name": "tokens"}
        ],
        "paths": paths(&common_errors),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A named token (`callview token create NAME --role viewer|editor|admin`, or `POST /api/tokens`), or the server's API token (CALLVIEW_API_TOKEN, an admin)."}
            },
            "schemas": schemas(call_direction, call_status)
        }
    })
}

fn paths(common_errors: &dyn Fn(Value) -> Value) -> Value {
    let list_params: Vec<Value> = [
        limit_param(
            Some(DEFAULT_LIMIT),
            &format!("Page size, 1 to {MAX_LIMIT}."),
        ),
        offset_param(),
        cursor_param(),
    ]
    .into_iter()
    .chain(conversation_filter_params())
    .collect();
    json!({
        "/api/conversations": {
            "get": {
                "operationId": "listConversations",
                "summary": "Conversations, most recent activity first, optionally filtered.",
                "description": "Every filter given must hold; `total` counts the conversations that match. The filters run in the database. Page with `offset`, or follow `next_cursor` (pass it back as `cursor`) until it is null: cursor pages stay cheap at any depth.",
                "tags": ["conversations"],
                "parameters": list_params,
                "responses": common_errors(json!({
                    "200": ok_response("A page of the matching conversations and how many match in all.", "ConversationList"),
                    "400": error_response("`limit`, `offset`, `cursor`, `q`, `direction`, `status`, `since` or `until` is not valid, `since` is after `until`, or `cursor` comes with an `offset` above 0 (`invalid_parameter`); the message names the parameter and the reason."),
                }))
            }
        },
        "/api/conversations/{id}": {
            "get": {
                "operationId": "getConversation",
                "summary": "One conversation.",
                "tags": ["conversations"],
                "parameters": [id_param()],
                "responses": common_errors(json!({
                    "200": ok_response("The conversation.", "Conversation"),
                    "400": error_response("The id is not a positive whole number (`invalid_id`)."),
                    "404": error_response("No conversation has this id (`not_found`)."),
                }))
            }
        },
        "/api/contacts/{id}": {
            "get": {
                "operationId": "getContact",
                "summary": "One contact, with its `ETag` (the version of what people wrote on it).",
                "tags": ["contacts"],
                "parameters": [row_id_param("contact")],
                "responses": common_errors(json!({
                    "200": ok_response("The contact; the `ETag` header holds its version.", "Contact"),
                    "400": error_response("The id is not a positive whole number (`invalid_id`)."),
                    "404": error_response("No contact has this id (`not_found`)."),
                }))
            },
            "patch": {
                "operationId": "editContact",
                "summary": "Edits a contact's name, company, notes and tags.",
                "description": "Give any of the fields; a field given as null (or an empty text) is cleared; a cleared name shows the number again. Send the `ETag` of the version you edited as `If-Match`: when someone else changed the contact meanwhile the answer is 412 `changed_elsewhere` and nothing changes. Without `If-Match` the last write wins. Syncs never change these fields. Every edit is published on `/api/events` (`edited`).",
                "tags": ["contacts"],
                "parameters": [row_id_param("contact"), if_match_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ContactEdit"}}}},
                "responses": common_errors(json!({
                    "200": ok_response("The contact as edited; the `ETag` header holds its new version.", "Contact"),
                    "400": error_response("The body is not JSON (`invalid_json`), a field is unknown, of the wrong type, too long or holds control characters (`invalid_field`, naming it), or `If-Match` is not an `ETag` (`invalid_if_match`)."),
                    "404": error_response("No contact has this id (`not_found`)."),
                    "412": error_response("The contact changed since the version in `If-Match` (`changed_elsewhere`); nothing was written."),
                    "403": error_response("The token is a viewer's: edits need the editor role (`forbidden`)."),
                }))
            }
        },
        "/api/messages/{id}": {
            "patch": {
                "operationId": "editMessage",
                "summary": "Edits a call's notes and tags (a message's `id`, as the messages list shows it).",
                "description": "Like `PATCH /api/contacts/{id}`: fields given are set (null clears), `If-Match` guards against overwriting someone else's edit (412), syncs never change them.",
                "tags": ["conversations"],
                "parameters": [row_id_param("message"), if_match_param()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageEdit"}}}},
                "responses": common_errors(json!({
                    "200": ok_response("The message as edited; the `ETag` header holds its new version.", "Message"),
                    "400": error_response("As for contacts (`invalid_json`, `invalid_field`, `invalid_if_match`, `invalid_id`)."),
                    "404": error_response("No message has this id (`not_found`)."),
                    "412": error_response("The message changed since the version in `If-Match` (`changed_elsewhere`)."),
                    "403": error_response("The token is a viewer's: edits need the editor role (`forbidden`)."),
                }))
            }
        },
        "/api/contacts.csv": {
            "get": {
                "operationId": "exportContacts",
                "summary": "Every contact as CSV: `phone,name,company,notes,tags` (tags separated by `;`), the form `callview contacts import` reads.",
                "tags": ["contacts"],
                "responses": common_errors(json!({
                    "200": {"description": "The CSV file.", "content": {"text/csv": {"schema": {"type": "string"}}}},
                }))
            }
        },
        "/api/export/calls.csv": export_operation(ExportFormat::Csv, common_errors),
        "/api/export/calls.jsonl": export_operation(ExportFormat::JsonLines, common_errors),
        "/api/tags": {
            "get": {
                "operationId": "listTags",
                "summary": "Every tag in use on contacts and calls, most used first, with counts (tags differing only in case count as one).",
                "tags": ["contacts"],
                "responses": common_errors(json!({
                    "200": ok_response("The tags.", "TagList"),
                }))
            }
        },
        "/api/stats": {
            "get": {
                "operationId": "getStats",
                "summary": "The dashboard's figures for a period: totals (interactions by actual direction, answered, missed = no-answer/busy/failed/canceled as `status=missed`, live, average and p90 wait and talk time, cost per currency as exact decimals), the same per local calendar bucket (every bucket, zero-filled), the wait-time distribution, inbound and missed calls per local weekday and hour, the busiest conversations and the company lines. p90 is the upper edge of the distribution bin holding the 90th percentile.",
                "tags": ["stats"],
                "parameters": [
                    {"name": "since", "in": "query", "description": "First local date (`YYYY-MM-DD`, inclusive) or an RFC 3339 instant on a quarter hour. Default: 29 days before `until`.", "schema": {"type": "string"}},
                    {"name": "until", "in": "query", "description": "Last local date (`YYYY-MM-DD`, inclusive) or an RFC 3339 instant on a quarter hour (exclusive). Default: today.", "schema": {"type": "string"}},
                    {"name": "tz", "in": "query", "description": "IANA time zone of the dates and buckets. Default: `CALLVIEW_TIMEZONE`, else UTC.", "schema": {"type": "string", "example": "Europe/Paris"}},
                    {"name": "bucket", "in": "query", "description": "Bucket size (at most 10,000 buckets). Default: day.", "schema": {"type": "string", "enum": ["hour", "day", "week", "month"]}}
                ],
                "responses": common_errors(json!({
                    "200": {"description": "The figures.", "content": {"application/json": {"schema": {"type": "object", "required": ["tz", "bucket", "since", "until", "totals", "series", "wait_distribution", "by_hour_of_week", "top_contacts", "by_owned_number", "texts"], "properties": {"texts": {"type": "object", "description": "Text messages sent or received in the period: `total`, `inbound`, `outbound`, `internal`, and `undelivered` (undelivered or failed)."}}}}}},
                    "400": error_response("A parameter does not parse, the period ends before it starts, or it holds too many buckets (`invalid_parameter`)."),
                }))
            }
        },
        "/api/recordings/{sid}": {
            "get": {
                "operationId": "getRecording",
                "summary": "One recording with its transcripts (both of Twilio's products); `url` is where this server plays it, `null` once Twilio deleted it.",
                "tags": ["recordings"],
                "parameters": [{
                    "name": "sid", "in": "path", "required": true,
                    "schema": {"type": "string", "pattern": "^RE[0-9a-fA-F]{32}$"}
                }],
                "responses": common_errors(json!({
                    "200": {"description": "The recording.", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": error_response("The SID is not a recording SID (`invalid_recording_sid`)."),
                    "404": error_response("No such recording is stored (`not_found`)."),
                }))
            }
        },
        "/api/recordings/{sid}/audio": {
            "get": {
                "operationId": "getRecordingAudio",
                "summary": "The recording's audio, streamed from Twilio with the server's credentials (the browser never needs them). Answers HTTP `Range` with 206 and `Content-Range` (416 past the end). Besides the bearer token it accepts the media cookie of `POST /api/session`.",
                "tags": ["recordings"],
                "parameters": [
                    {
                        "name": "sid", "in": "path", "required": true,
                        "schema": {"type": "string", "pattern": "^RE[0-9a-fA-F]{32}$"}
                    },
                    {
                        "name": "format", "in": "query", "required": false,
                        "description": "`mp3` (`audio/mpeg`, the default) or `wav` (`audio/x-wav`).",
                        "schema": {"type": "string", "enum": ["mp3", "wav"], "default": "mp3"}
                    },
                    {
                        "name": "Range", "in": "header", "required": false,
                        "schema": {"type": "string", "example": "bytes=0-1023"}
                    }
                ],
                "responses": common_errors(json!({
                    "200": {"description": "The whole file.", "content": {"audio/mpeg": {}, "audio/x-wav": {}}},
                    "206": {"description": "The requested range.", "content": {"audio/mpeg": {}, "audio/x-wav": {}}},
                    "400": error_response("The SID or `format` is not valid."),
                    "404": error_response("No such recording (`not_found`), or Twilio deleted it (`recording_gone`)."),
                    "416": error_response("The range starts past the end (`range_not_satisfiable`, with `Content-Range: bytes */size`)."),
                    "502": error_response("Twilio failed (`twilio_error`, with Twilio's status, code and message)."),
                    "503": error_response("The server has no Twilio account (`recordings_unavailable`)."),
                }))
            }
        },
        "/api/session": {
            "post": {
                "operationId": "startSession",
                "summary": "Sets the `callview_media` cookie (HttpOnly, SameSite=Strict, path /api/recordings/, 12 hours) that lets an `<audio>` element, which cannot send headers, play recordings. It opens nothing else.",
                "tags": ["recordings"],
                "responses": common_errors(json!({
                    "200": {"description": "`{\"media_cookie\": true, \"expires_at\"}` with `Set-Cookie`; `{\"media_cookie\": false}` when the API needs no token.", "content": {"application/json": {"schema": {"type": "object"}}}},
                }))
            }
        },
        "/api/conversations/{id}/messages": {
            "get": {
                "operationId": "listMessages",
                "summary": "A conversation's calls and texts, interleaved newest first: one message per root call (its legs folded into `metadata.legs`) and one per text (`type` `sms` or `mms`).",
                "tags": ["conversations"],
                "parameters": [
                    id_param(),
                    {
                        "name": "limit", "in": "query", "required": false,
                        "description": format!("At most this many messages, 1 to {}.", MessageQuery::MAX_LIMIT),
                        "schema": {"type": "integer", "minimum": 1, "maximum": MessageQuery::MAX_LIMIT, "default": MessageQuery::DEFAULT_LIMIT}
                    },
                    {
                        "name": "cursor", "in": "query", "required": false,
                        "description": "Where the page starts: the `next_cursor` of the previous page, passed back unchanged (opaque, URL-safe). Pages of messages follow each other by cursor only: an `offset` is refused.",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "maxLength": MessageCursor::MAX_LEN}
                    },
                    type_param("`call`: calls only; `sms`: texts (SMS and MMS) only.")
                ],
                "responses": common_errors(json!({
                    "200": ok_response("A page of messages, newest first, and how many there are in all.", "MessageList"),
                    "400": error_response("The id (`invalid_id`), `limit`, `type` or `cursor` is not valid, or an `offset` was given (`invalid_parameter`)."),
                    "404": error_response("No conversation has this id (`not_found`)."),
                }))
            },
            "post": {
                "operationId": "sendText",
                "summary": "Sends a text to the conversation's party through Twilio (when the server was given CALLVIEW_SMS_FROM) and stores it at once; its status follows through the message webhook and syncs. Needs an editor's token.",
                "tags": ["texts"],
                "parameters": [id_param()],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {
                        "type": "object", "required": ["body"], "additionalProperties": false,
                        "properties": {"body": {"type": "string", "minLength": 1, "maxLength": 1600}}
                    }}}
                },
                "responses": common_errors(json!({
                    "201": ok_response("The text as Twilio accepted it (usually `queued`).", "Text"),
                    "400": error_response("The body is empty or longer than 1,600 characters (`invalid_body`), or the party cannot receive texts: anonymous, SIP or a Voice SDK client (`cannot_text`)."),
                    "403": error_response("Sending is off on this server (`sending_disabled`), or the token's role is below editor (`forbidden`)."),
                    "404": error_response("No conversation has this id (`not_found`)."),
                    "422": error_response("Twilio refused the text (`twilio_refused`, with `twilio_code` and `twilio_message`, e.g. 21610 for an unsubscribed recipient); nothing was stored."),
                    "502": error_response("Twilio could not be reached (`twilio_unavailable`); nothing was stored."),
                }))
            }
        },
        "/api/texts/{sid}/media/{media_sid}": {
            "get": {
                "operationId": "getTextMedia",
                "summary": "One picture (or other media) of a stored MMS, streamed from Twilio with Twilio's Content-Type. The media cookie of `POST /api/session` opens it too (for `<img>`).",
                "tags": ["texts"],
                "parameters": [
                    {"name": "sid", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^(SM|MM)[0-9a-fA-F]{32}$"}},
                    {"name": "media_sid", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^ME[0-9a-fA-F]{32}$"}}
                ],
                "responses": common_errors(json!({
                    "200": {"description": "The media's bytes.", "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": error_response("No stored text has this media, or Twilio no longer has it (`not_found`)."),
                    "502": error_response("Twilio could not be reached (`twilio_unavailable`)."),
                }))
            }
        },
        "/api/calls/active": {
            "get": {
                "operationId": "listActiveCalls",
                "summary": "Stored calls whose status is not final yet (queued, ringing, in-progress, ...), oldest first.",
                "tags": ["calls"],
                "parameters": [limit_param(Some(DEFAULT_ACTIVE_LIMIT), &format!("At most this many calls, 1 to {MAX_LIMIT}."))],
                "responses": common_errors(json!({
                    "200": ok_response("The unfinished calls.", "ActiveCallList"),
                    "400": error_response("`limit` is not valid (`invalid_parameter`)."),
                }))
            }
        },
        "/api/sync/today": sync_operation(
            "Sync the last 3 days now (at most 500 calls).",
            "Runs the `manual` preset and answers when it has finished. One sync runs at a time: a request while another sync runs is answered 409 `sync_in_progress` at once.",
            "syncToday"
        ),
        "/api/sync/recent": sync_operation(
            "Sync the last hour now (at most 50 calls).",
            "Runs the `recent` preset and answers when it has finished. One sync runs at a time: a request while another sync runs is answered 409 `sync_in_progress` at once.",
            "syncRecent"
        ),
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "tags": ["meta"],
                "responses": {
                    "200": {"description": "The OpenAPI 3.1 document.", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": error_response("Missing or wrong bearer token (`unauthorized`).")
                }
            }
        },
        "/api/events": {
            "get": {
                "operationId": "events",
                "summary": "Live updates as server-sent events, for the viewer to refresh what it shows.",
                "description": "A `text/event-stream` that stays open. Each event's name is its `type` and its data the JSON object: `hello` (first, on connecting), `sync_started` {trigger}, `sync_progress` {trigger, fetched, pages} after each page a sync applied, `sync` {trigger, ok, inserted, updated, moved, fetched, error?} when a sync finished, `changed` {inserted, updated} when calls changed outside a sync, `resync` when this stream missed events (reload everything). Every event has `at` (Unix milliseconds). A `: keep-alive` comment comes every 15 s. Besides the bearer header, this route takes the token as `?token=` (an EventSource cannot send headers); query strings are never logged.",
                "tags": ["meta"],
                "parameters": [{
                    "name": "token", "in": "query", "required": false,
                    "description": "The API token, for clients that cannot send `Authorization`.",
                    "schema": {"type": "string"}
                }],
                "responses": {
                    "200": {"description": "The event stream.", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                    "401": error_response("Missing or wrong token (`unauthorized`).")
                }
            }
        },
        "/api/me": {
            "get": {
                "operationId": "me",
                "summary": "Who the request's token is: its name and role (`name` null and `role` admin when the API is open: no API token and no stored token).",
                "tags": ["tokens"],
                "responses": common_errors(json!({
                    "200": ok_response("The caller.", "Me"),
                }))
            }
        },
        "/api/tokens": {
            "get": {
                "operationId": "listTokens",
                "summary": "Every token, oldest first (revoked and expired ones included), never its text. Needs the admin role.",
                "tags": ["tokens"],
                "responses": common_errors(json!({
                    "200": ok_response("The tokens.", "TokenList"),
                    "403": error_response("Needs the admin role (`forbidden`)."),
                }))
            },
            "post": {
                "operationId": "createToken",
                "summary": "Creates a token; its text (`token`) is in this answer only: the server keeps its SHA-256. Needs the admin role.",
                "tags": ["tokens"],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewToken"}}}},
                "responses": common_errors(json!({
                    "201": ok_response("The token, with its text.", "CreatedToken"),
                    "400": error_response("The body is not JSON (`invalid_json`), or a field is missing or not valid (`invalid_field`, naming it)."),
                    "403": error_response("Needs the admin role (`forbidden`)."),
                    "409": error_response("An active token has this name (`conflict`): revoke it first."),
                }))
            }
        },
        "/api/tokens/{name}": {
            "delete": {
                "operationId": "revokeToken",
                "summary": "Revokes the token with this name: every server sharing the database refuses it from its next request on. Needs the admin role.",
                "tags": ["tokens"],
                "parameters": [{"name": "name", "in": "path", "required": true, "description": "The token's name.", "schema": {"type": "string"}}],
                "responses": common_errors(json!({
                    "200": ok_response("The token as revoked.", "Token"),
                    "403": error_response("Needs the admin role (`forbidden`)."),
                    "404": error_response("No active token has this name (`not_found`)."),
                }))
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness: answers 200 while the process serves, with whether the database answers and how the last sync went. Needs no token.",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": ok_response("The process serves (`status` is `degraded` and `store` `unreachable` when the database does not answer).", "Health")
                }
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: the database answers, every migration is applied, and the last successful sync is recent enough (when a sync schedule runs). Needs no token.",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": ok_response("Ready: every check is `ok` or `skip`.", "Readiness"),
                    "503": ok_response("Not ready: a check is `fail`; its `message` says why.", "Readiness")
                }
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text format 0.0.4; OpenMetrics when `Accept` asks for `application/openmetrics-text`). Needs the API token when one is set; `--metrics-listen` serves it without one on a separate address.",
                "tags": ["meta"],
                "responses": {
                    "200": {"description": "Every metric.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "401": error_response("Missing or wrong bearer token (`unauthorized`).")
                }
            }
        }
    })
}

fn schemas(call_direction: Value, call_status: Value) -> Value {
    json!({
        "Me": {
            "type": "object",
            "required": ["name", "role", "auth_required"],
            "properties": {
                "name": {"type": ["string", "null"], "description": "The token's name (`api-token` for CALLVIEW_API_TOKEN); null when the API is open."},
                "role": {"type": "string", "enum": ["viewer", "editor", "admin"]},
                "auth_required": {"type": "boolean", "description": "Whether the API needs a token."}
            }
        },
        "Token": {
            "type": "object",
            "required": ["name", "role", "created_at", "last_used_at", "expires_at", "revoked_at", "status"],
            "properties": {
                "name": {"type": "string"},
                "role": {"type": "string", "enum": ["viewer", "editor", "admin"]},
                "created_at": {"type": "string", "format": "date-time"},
                "last_used_at": {"type": ["string", "null"], "format": "date-time", "description": "To the minute: written at most once a minute."},
                "expires_at": {"type": ["string", "null"], "format": "date-time"},
                "revoked_at": {"type": ["string", "null"], "format": "date-time"},
                "status": {"type": "string", "enum": ["active", "expired", "revoked"]}
            }
        },
        "CreatedToken": {
            "allOf": [{"$ref": "#/components/schemas/Token"}, {
                "type": "object",
                "required": ["token"],
                "properties": {"token": {"type": "string", "description": "The token's text (`cv_` and 43 characters), shown only here."}}
            }]
        },
        "TokenList": {
            "type": "object",
            "required": ["tokens", "total"],
            "properties": {
                "tokens": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}},
                "total": {"type": "integer"}
            }
        },
        "NewToken": {
            "type": "object",
            "required": ["name", "role"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "maxLength": 64, "pattern": "^[\\p{L}\\p{N}._@-]+$", "description": "Who holds it; edits are recorded under this name. Not `api-token`."},
                "role": {"type": "string", "enum": ["viewer", "editor", "admin"]},
                "expires_in_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650, "description": "Days until it stops working; absent or null: never."}
            }
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "description": "Stable machine-readable code.", "examples": ["invalid_parameter", "invalid_id", "not_found", "method_not_allowed", "unauthorized", "forbidden", "too_many_attempts", "sync_in_progress", "sync_failed", "sync_unavailable", "timeout", "payload_too_large", "internal"]},
                        "message": {"type": "string", "description": "What went wrong, for people."}
                    }
                }
            }
        },
        "CallDirection": call_direction,
        "CallStatus": call_status,
        "ContactEdit": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": {"type": ["string", "null"], "maxLength": MAX_NAME_CHARS},
                "company_name": {"type": ["string", "null"], "maxLength": MAX_COMPANY_CHARS},
                "notes": {"type": ["string", "null"], "maxLength": MAX_NOTES_CHARS},
                "tags": {"type": ["array", "null"], "maxItems": MAX_TAGS, "items": {"type": "string", "maxLength": MAX_TAG_CHARS}}
            }
        },
        "MessageEdit": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "notes": {"type": ["string", "null"], "maxLength": MAX_NOTES_CHARS},
                "tags": {"type": ["array", "null"], "maxItems": MAX_TAGS, "items": {"type": "string", "maxLength": MAX_TAG_CHARS}}
            }
        },
        "TagList": {
            "type": "object",
            "required": ["tags", "total"],
            "properties": {
                "total": {"type": "integer"},
                "tags": {"type": "array", "items": {
                    "type": "object",
                    "required": ["tag", "contacts", "calls"],
                    "properties": {
                        "tag": {"type": "string", "description": "As most often written."},
                        "contacts": {"type": "integer"},
                        "calls": {"type": "integer"}
                    }
                }}
            }
        },
        "Contact": {
            "type": "object",
            "required": ["id", "handle", "metadata", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "string", "description": "Database id."},
                "handle": {"type": "string", "description": "Canonical key: E.164 (`+19788447773`), `anonymous`, or an internal endpoint (`sip:dispatcher@acme.sip.twilio.com`, `client:alice`)."},
                "name": {"type": "string", "description": "Display name."},
                "avatar_url": {"type": "string"},
                "metadata": {
                    "type": "object",
                    "required": ["formatted_number"],
                    "properties": {
                        "formatted_number": {"type": "string", "examples": ["+1 (978) 844-7773"]},
                        "country_code": {"type": "string", "description": "ISO 3166 region of a phone number.", "examples": ["US"]},
                        "is_mobile": {"type": "boolean", "description": "Present when the number's type is known."},
                        "company_name": {"type": ["string", "null"]},
                        "notes": {"type": ["string", "null"]},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "edited_by": {"type": ["string", "null"]},
                        "edited_at": {"type": ["integer", "null"], "description": "Unix milliseconds of the last edit."},
                        "version": {"type": "integer", "description": "Counts edits; the `ETag`."}
                    },
                    "additionalProperties": true
                },
                "created_at": {"type": "integer", "description": "Unix milliseconds."},
                "updated_at": {"type": "integer", "description": "Unix milliseconds."}
            }
        },
        "Call": {
            "type": "object",
            "required": ["sid", "from", "to", "duration", "status", "direction", "start_time"],
            "properties": {
                "sid": {"type": "string", "description": "Twilio Call SID."},
                "from": {"type": "string", "description": "Twilio's raw `from` (empty when none)."},
                "to": {"type": "string", "description": "Twilio's raw `to` (empty when none)."},
                "duration": {"type": "integer", "description": "Seconds; 0 while unknown."},
                "status": {"$ref": "#/components/schemas/CallStatus"},
                "direction": {"$ref": "#/components/schemas/CallDirection"},
                "recording_url": {"type": "string"},
                "price": {"type": "string", "description": "Cost as Twilio wrote it, negative for a charge; absent until Twilio fills it in.", "examples": ["-0.01400"]},
                "price_unit": {"type": "string", "examples": ["USD"]},
                "answered_by": {"type": "string"},
                "start_time": {"type": "string", "format": "date-time", "description": "ISO 8601. For a call never dialled, when Twilio created it."},
                "end_time": {"type": "string", "format": "date-time"},
                "parent_call_sid": {"type": "string", "description": "The parent call, for a leg."}
            }
        },
        "ActiveCall": {
            "allOf": [
                {"$ref": "#/components/schemas/Call"},
                {
                    "type": "object",
                    "required": ["conversation_id", "root_call_sid"],
                    "properties": {
                        "conversation_id": {"type": "string"},
                        "root_call_sid": {"type": "string", "description": "The root of the call's tree (its own SID for a root call)."}
                    }
                }
            ]
        },
        "Message": {
            "type": "object",
            "required": ["id", "external_id", "type", "direction", "created_at", "call", "subject", "body", "blurb", "conversation_id", "contact", "metadata"],
            "properties": {
                "id": {"type": "string", "description": "The root call's row id."},
                "external_id": {"type": "string", "description": "The root call's SID."},
                "type": {"const": "call"},
                "direction": {"$ref": "#/components/schemas/CallDirection"},
                "created_at": {"type": "integer", "description": "Unix milliseconds: the root call's start."},
                "call": {"$ref": "#/components/schemas/Call"},
                "subject": {"type": "string", "examples": ["📞 Inbound call - 40s"]},
                "body": {"type": "string"},
                "blurb": {"type": "string"},
                "conversation_id": {"type": "string"},
                "contact": {"$ref": "#/components/schemas/Contact"},
                "metadata": {
                    "type": "object",
                    "required": ["call_sid", "duration", "status", "from_number", "to_number", "total_duration", "talk_time", "wait_time", "merged_from_parent", "display_status", "actual_direction", "twilio_direction", "twilio_status", "legs"],
                    "properties": {
                        "call_sid": {"type": "string"},
                        "duration": {"type": "integer"},
                        "status": {"$ref": "#/components/schemas/CallStatus"},
                        "recording_url": {"type": "string"},
                        "from_number": {"type": "string"},
                        "to_number": {"type": "string"},
                        "parent_call_sid": {"type": "string"},
                        "total_duration": {"type": "integer", "description": "The root call's duration, seconds."},
                        "talk_time": {"type": "integer", "description": "Seconds of answered legs (the root's duration when it has no legs)."},
                        "wait_time": {"type": "integer", "description": "total_duration - talk_time."},
                        "merged_from_parent": {"type": "boolean", "description": "Whether legs were folded in."},
                        "display_status": {"type": "string", "description": "completed, no-answer, busy, failed, canceled, or the live status."},
                        "actual_direction": {"type": "string", "enum": ["inbound", "outbound", "internal"]},
                        "twilio_direction": {"$ref": "#/components/schemas/CallDirection"},
                        "twilio_status": {"$ref": "#/components/schemas/CallStatus"},
                        "legs": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}, "description": "Every leg, oldest first."},
                        "price": {"type": "string"},
                        "price_unit": {"type": "string"},
                        "answered_by": {"type": ["string", "null"]},
                        "queue_time": {"type": ["string", "null"], "description": "Twilio's queue time, milliseconds."},
                        "notes": {"type": ["string", "null"], "description": "Notes people wrote on the call."},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "edited_by": {"type": ["string", "null"]},
                        "edited_at": {"type": ["integer", "null"], "description": "Unix milliseconds of the last edit."},
                        "version": {"type": "integer", "description": "Counts edits; the `ETag` of `PATCH /api/messages/{id}`."},
                        "no_longer_followed": {"type": "boolean", "description": "The call never reached a final status and the refresh stopped asking Twilio about it: this is its last known state."}
                    },
                    "additionalProperties": true
                }
            }
        },
        "Text": {
            "type": "object",
            "required": ["id", "external_id", "type", "direction", "created_at", "subject", "body", "blurb", "conversation_id", "contact", "metadata"],
            "properties": {
                "id": {"type": "string", "description": "The message SID."},
                "external_id": {"type": "string", "description": "The message SID (SM... or MM...)."},
                "type": {"type": "string", "enum": ["sms", "mms"]},
                "direction": {"type": "string", "description": "Twilio's: inbound, outbound-api, outbound-call, outbound-reply."},
                "created_at": {"type": "integer", "description": "Unix milliseconds: when it was sent or received."},
                "subject": {"type": "string", "examples": ["💬 Inbound text"]},
                "body": {"type": "string", "description": "The text, exactly as sent."},
                "blurb": {"type": "string", "description": "Its first words."},
                "conversation_id": {"type": "string"},
                "contact": {"$ref": "#/components/schemas/Contact"},
                "metadata": {
                    "type": "object",
                    "required": ["message_sid", "status", "num_media", "media", "actual_direction", "twilio_direction", "from_number", "to_number"],
                    "properties": {
                        "message_sid": {"type": "string"},
                        "status": {"type": "string", "description": "Twilio's: queued, sending, sent, delivered, undelivered, failed, receiving, received, ..."},
                        "num_segments": {"type": ["integer", "null"]},
                        "num_media": {"type": "integer"},
                        "media": {"type": "array", "items": {
                            "type": "object", "required": ["sid", "url"],
                            "properties": {
                                "sid": {"type": "string"},
                                "content_type": {"type": ["string", "null"]},
                                "url": {"type": "string", "description": "A path on this server (`/api/texts/{sid}/media/{media_sid}`)."}
                            }
                        }},
                        "price": {"type": "string"},
                        "price_unit": {"type": "string"},
                        "error_code": {"type": "integer", "description": "Twilio's error code when delivery failed (e.g. 30003)."},
                        "error_message": {"type": "string"},
                        "actual_direction": {"type": "string", "enum": ["inbound", "outbound", "internal"]},
                        "twilio_direction": {"type": "string"},
                        "from_number": {"type": "string"},
                        "to_number": {"type": "string"},
                        "messaging_service_sid": {"type": "string"},
                        "date_sent": {"type": "string", "format": "date-time"}
                    }
                }
            }
        },
        "Conversation": {
            "type": "object",
            "required": ["id", "external_id", "subject", "status", "last_message", "last_message_at", "unread_count", "contact", "metadata", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "string"},
                "external_id": {"type": "string", "description": "The party's display form.", "examples": ["+1 (978) 844-7773"]},
                "subject": {"type": "string", "examples": ["Calls with +1 (978) 844-7773"]},
                "status": {"type": "string", "enum": ["active", "archived"]},
                "last_message": {"oneOf": [{"$ref": "#/components/schemas/Message"}, {"$ref": "#/components/schemas/Text"}, {"type": "null"}], "description": "The newest message: a call, or a text when a text is newer than every call."},
                "last_message_at": {"type": "integer", "description": "Unix milliseconds of the newest call or text."},
                "unread_count": {"type": "integer", "const": 0},
                "contact": {"$ref": "#/components/schemas/Contact"},
                "metadata": {
                    "type": "object",
                    "required": ["total_calls", "total_duration", "last_call_direction"],
                    "properties": {
                        "total_calls": {"type": "integer", "description": "Root calls."},
                        "total_duration": {"type": "integer", "description": "Seconds, root calls."},
                        "last_call_direction": {"type": ["string", "null"], "enum": ["inbound", "outbound", "internal", null]},
                        "last_root_sid": {"type": "string"},
                        "total_messages": {"type": "integer", "description": "Texts (SMS and MMS)."},
                        "last_message_type": {"type": ["string", "null"], "enum": ["call", "sms", "mms", null]},
                        "last_call_status": {"type": ["string", "null"], "description": "The newest call's display status (what `status` filters on), also when a text is newest."}
                    }
                },
                "created_at": {"type": "integer"},
                "updated_at": {"type": "integer"}
            }
        },
        "ConversationList": {
            "type": "object",
            "required": ["conversations", "total", "next_cursor"],
            "properties": {
                "conversations": {"type": "array", "items": {"$ref": "#/components/schemas/Conversation"}},
                "total": {"type": "integer", "description": "How many conversations match in all, whatever the page."},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass it as `cursor` (with the same filters) for the next page; null when no conversation follows this page. Opaque: do not build or change it."
                }
            }
        },
        "MessageList": {
            "type": "object",
            "required": ["messages", "total", "next_cursor"],
            "properties": {
                "messages": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/Message"}, {"$ref": "#/components/schemas/Text"}]}},
                "total": {"type": "integer", "description": "Messages of the kinds asked for (root calls and texts) in the conversation, in all pages."},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass it as `cursor` for the next (older) page; null on the last page. Opaque: do not build or change it."
                }
            }
        },
        "ActiveCallList": {
            "type": "object",
            "required": ["calls", "total"],
            "properties": {
                "calls": {"type": "array", "items": {"$ref": "#/components/schemas/ActiveCall"}},
                "total": {"type": "integer"}
            }
        },
        "SyncReport": {
            "type": "object",
            "required": ["fetched", "inserted", "updated", "unchanged", "moved", "skipped", "outside_window", "refreshed", "pages", "more_available", "elapsed_ms"],
            "properties": {
                "fetched": {"type": "integer", "description": "Records received from Twilio."},
                "inserted": {"type": "integer", "description": "Calls stored for the first time."},
                "updated": {"type": "integer", "description": "Stored calls that changed."},
                "unchanged": {"type": "integer"},
                "moved": {"type": "integer", "description": "Stored calls moved under a parent that arrived later."},
                "skipped": {"type": "array", "items": {"type": "object", "required": ["reason"], "properties": {"sid": {"type": ["string", "null"]}, "reason": {"type": "string"}}}},
                "outside_window": {"type": "integer"},
                "refreshed": {"type": "integer"},
                "pages": {"type": "integer"},
                "more_available": {"type": "boolean", "description": "Whether the preset's cap stopped the run before Twilio ran out of calls."},
                "since": {"type": ["string", "null"], "format": "date-time"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "elapsed_ms": {"type": "integer"}
            }
        },
        "SyncResult": {
            "type": "object",
            "required": ["success", "message", "synced", "skipped", "total", "report"],
            "properties": {
                "success": {"const": true},
                "message": {"type": "string", "examples": ["Synced 12 new calls from last 3 days"]},
                "synced": {"type": "integer", "description": "Calls stored for the first time."},
                "skipped": {"type": "integer", "description": "Records that could not be stored."},
                "total": {"type": "integer", "description": "Records received from Twilio."},
                "report": {"$ref": "#/components/schemas/SyncReport"}
            }
        },
        "SyncOutcome": {
            "type": "object",
            "required": ["at", "finished_at", "trigger", "ok", "inserted", "updated", "fetched"],
            "properties": {
                "at": {"type": "integer", "description": "Start, Unix milliseconds."},
                "finished_at": {"type": "integer"},
                "trigger": {"type": "string", "enum": ["initial", "scheduled", "manual", "recent", "other"]},
                "ok": {"type": "boolean"},
                "error": {"type": "string", "description": "Why it failed."},
                "inserted": {"type": "integer"},
                "updated": {"type": "integer"},
                "fetched": {"type": "integer"},
                "last_success_at": {"type": "integer"}
            }
        },
        "Health": {
            "type": "object",
            "required": ["status", "store", "sync_running", "last_sync"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "store": {"type": "string", "enum": ["ok", "unreachable"]},
                "sync_running": {"type": "boolean"},
                "last_sync": {"oneOf": [{"$ref": "#/components/schemas/SyncOutcome"}, {"type": "null"}]},
                "error": {"$ref": "#/components/schemas/Error/properties/error"}
            }
        },
        "ReadinessCheck": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "fail", "skip"]},
                "message": {"type": "string", "description": "Why it failed or was skipped."}
            },
            "additionalProperties": true
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "checks": {
                    "type": "object",
                    "required": ["database", "migrations", "sync"],
                    "properties": {
                        "database": {"$ref": "#/components/schemas/ReadinessCheck"},
                        "migrations": {
                            "description": "`applied` and `expected`: the latest migration version the database records and this build's.",
                            "$ref": "#/components/schemas/ReadinessCheck"
                        },
                        "sync": {
                            "description": "`last_success_at` (Unix ms: the later of this process's last successful sync and the store's watermark), `age_seconds`, `max_age_seconds`.",
                            "$ref": "#/components/schemas/ReadinessCheck"
                        }
                    }
                }
            }
        }
    })
}
