//! Talking to Twilio: the [`TwilioClient`] trait, its filters and pages.
//!
//! The sync engine only ever sees `Arc<dyn TwilioClient>`. The real
//! implementation is `HttpTwilioClient` (reqwest, feature `http`); the
//! simulated account of the `callview-sim` crate is another.

mod config;
mod error;
#[cfg(feature = "http")]
mod http;
mod observer;
mod query;
mod texts;

pub use config::{
    Credentials, Secret, TwilioConfig, DEFAULT_BASE_URL, DEFAULT_INTELLIGENCE_BASE_URL,
};
pub use error::TwilioError;
#[cfg(feature = "http")]
pub use http::{HttpTwilioClient, RetryPolicy};
pub use observer::{TwilioEvent, TwilioObserver};
pub use query::{encode_component, encode_query, format_query_time};
pub use texts::{OutgoingText, TextFilter, TextPage, TextSender};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, Stream};

use crate::call::{Call, CallParseError, CallSid, CallStatus};
use crate::recording::{MediaParseError, Recording, RecordingSid, Sentence, Transcript};
use crate::text::{MessageSid, Text, TextMedia};

/// Which calls to list. Every field is optional; an empty filter lists the
/// whole account, newest first.
///
/// ```
/// use callview_core::twilio::CallFilter;
/// use chrono::{TimeZone, Utc};
/// let filter = CallFilter::started_after(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap());
/// assert_eq!(filter.page_size, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls that started after this instant (`StartTime>`).
    pub start_time_after: Option<DateTime<Utc>>,
    /// Only calls that started before this instant (`StartTime<`).
    pub start_time_before: Option<DateTime<Utc>>,
    /// Only calls with this status (`Status`).
    pub status: Option<CallStatus>,
    /// Only legs of this parent (`ParentCallSid`).
    pub parent_call_sid: Option<CallSid>,
    /// Records per page (`PageSize`, 1..=1000).
    pub page_size: u32,
}

impl Default for CallFilter {
    fn default() -> Self {
        Self {
            start_time_after: None,
            start_time_before: None,
            status: None,
            parent_call_sid: None,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

/// The largest page Twilio serves.
pub const MAX_PAGE_SIZE: u32 = 1000;

impl CallFilter {
    /// Calls that started after `after`, in pages of 1000.
    pub fn started_after(after: DateTime<Utc>) -> Self {
        Self {
            start_time_after: Some(after),
            ..Self::default()
        }
    }

    /// Whether `call` passes this filter, as Twilio decides it (mocks use
    /// this to serve a listing). A call without a start time (never
    /// dialled) fails any time bound, as it does on Twilio.
    pub fn matches(&self, call: &Call) -> bool {
        let bounded = self.start_time_after.is_some() || self.start_time_before.is_some();
        match call.start_time {
            None if bounded => return false,
            None => {}
            Some(start) => {
                if self.start_time_after.is_some_and(|a| start <= a) {
                    return false;
                }
                if self.start_time_before.is_some_and(|b| start >= b) {
                    return false;
                }
            }
        }
        if self.status.as_ref().is_some_and(|s| *s != call.status) {
            return false;
        }
        if let Some(parent) = &self.parent_call_sid {
            if call.parent_call_sid.as_ref() != Some(parent) {
                return false;
            }
        }
        true
    }
}

/// Where the next page is: Twilio's `next_page_uri`, kept exactly as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageToken(pub String);

/// One page of the calls list.
#[derive(Clone, Debug, Default)]
pub struct CallPage {
    /// The records that parsed.
    pub calls: Vec<Call>,
    /// Records that could not be understood, with the reason; never dropped
    /// silently.
    pub rejected: Vec<CallParseError>,
    /// The next page, `None` on the last one.
    pub next: Option<PageToken>,
}

/// One of the account's own phone numbers (an IncomingPhoneNumber).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncomingNumber {
    /// `PN...`.
    pub sid: String,
    /// The number, E.164.
    pub phone_number: String,
    /// The name given in the console.
    pub friendly_name: Option<String>,
}

/// Which recordings to list (`Recordings.json`). Every field is optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingFilter {
    /// Only recordings created after this instant (`DateCreated>`).
    pub created_after: Option<DateTime<Utc>>,
    /// Only recordings created before this instant (`DateCreated<`).
    pub created_before: Option<DateTime<Utc>>,
    /// Only the recordings of this call (`CallSid`).
    pub call_sid: Option<CallSid>,
    /// Records per page (`PageSize`, 1..=1000).
    pub page_size: u32,
}

impl Default for RecordingFilter {
    fn default() -> Self {
        Self {
            created_after: None,
            created_before: None,
            call_sid: None,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

impl RecordingFilter {
    /// The recordings of one call.
    pub fn of_call(call_sid: CallSid) -> Self {
        Self {
            call_sid: Some(call_sid),
            ..Self::default()
        }
    }

    /// Whether `recording` passes this filter, as Twilio decides it (mocks
    /// use this to serve a listing).
    pub fn matches(&self, recording: &Recording) -> bool {
        let created = recording.date_created;
        if self
            .created_after
            .is_some_and(|a| created.is_none_or(|c| c <= a))
        {
            return false;
        }
        if self
            .created_before
            .is_some_and(|b| created.is_none_or(|c| c >= b))
        {
            return false;
        }
        match &self.call_sid {
            Some(call) => recording.call_sid.as_ref() == Some(call),
            None => true,
        }
    }
}

/// One page of the recordings list.
#[derive(Clone, Debug, Default)]
pub struct RecordingPage {
    /// The records that parsed.
    pub recordings: Vec<Recording>,
    /// Records that could not be understood, with the reason.
    pub rejected: Vec<MediaParseError>,
    /// The next page, `None` on the last one.
    pub next: Option<PageToken>,
}

/// Which Voice Intelligence transcripts to list (`/v2/Transcripts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptFilter {
    /// `AfterDateCreated`.
    pub created_after: Option<DateTime<Utc>>,
    /// `BeforeDateCreated`.
    pub created_before: Option<DateTime<Utc>>,
    /// `SourceSid`: only the transcripts of this recording or call.
    pub source_sid: Option<String>,
    /// `PageSize` (1..=1000).
    pub page_size: u32,
}

impl Default for TranscriptFilter {
    fn default() -> Self {
        Self {
            created_after: None,
            created_before: None,
            source_sid: None,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

/// One page of transcripts (either product).
#[derive(Clone, Debug, Default)]
pub struct TranscriptPage {
    /// The records that parsed (Voice Intelligence ones without sentences).
    pub transcripts: Vec<Transcript>,
    /// Records that could not be understood, with the reason.
    pub rejected: Vec<MediaParseError>,
    /// The next page (`next_page_uri`, or the v2 APIs' absolute
    /// `meta.next_page_url`), `None` on the last one.
    pub next: Option<PageToken>,
}

/// The two audio encodings Twilio serves a recording in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum AudioFormat {
    /// `.mp3`, `audio/mpeg` (the default: smaller).
    #[default]
    Mp3,
    /// `.wav`, `audio/x-wav`.
    Wav,
}

impl AudioFormat {
    /// `mp3` or `wav`: the extension Twilio's URL takes.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Wav => "wav",
        }
    }

    /// Reads `mp3` or `wav` (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "mp3" => Some(Self::Mp3),
            "wav" => Some(Self::Wav),
            _ => None,
        }
    }

    /// The media type Twilio serves this format with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Wav => "audio/x-wav",
        }
    }
}

/// A recording's audio as it arrives: Twilio's headers and the body as a
/// stream of chunks, so that any size is passed on in constant memory.
pub struct RecordingAudio {
    /// Twilio's `Content-Type`.
    pub content_type: Option<String>,
    /// Twilio's `Content-Length`, when it sent one.
    pub content_length: Option<u64>,
    /// The bytes.
    pub body: BoxStream<'static, Result<bytes::Bytes, TwilioError>>,
}

impl std::fmt::Debug for RecordingAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingAudio")
            .field("content_type", &self.content_type)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// Every page `fetch` returns, following each page's `next` token until the
/// last page, as a stream that ends after the first error.
pub fn pages<'a, P, F, Fut>(
    mut fetch: F,
    next_of: fn(&P) -> Option<PageToken>,
) -> impl Stream<Item = Result<P, TwilioError>> + 'a
where
    P: 'a,
    F: FnMut(Option<PageToken>) -> Fut + 'a,
    Fut: std::future::Future<Output = Result<P, TwilioError>> + 'a,
{
    enum State {
        First,
        Next(PageToken),
        Done,
    }
    stream::unfold(State::First, move |state| {
        let token = match state {
            State::Done => None,
            State::First => Some(None),
            State::Next(token) => Some(Some(token)),
        };
        let fut = token.map(&mut fetch);
        async move {
            match fut?.await {
                Ok(page) => {
                    let next = match next_of(&page) {
                        Some(t) => State::Next(t),
                        None => State::Done,
                    };
                    Some((Ok(page), next))
                }
                Err(e) => Some((Err(e), State::Done)),
            }
        }
    })
}

/// Every page of recordings for `filter`, as a stream.
pub fn recording_pages(
    client: &dyn TwilioClient,
    filter: RecordingFilter,
) -> impl Stream<Item = Result<RecordingPage, TwilioError>> + '_ {
    pages(
        move |token| {
            let filter = filter.clone();
            async move { client.list_recordings_page(&filter, token.as_ref()).await }
        },
        |p: &RecordingPage| p.next.clone(),
    )
}

/// What the sync engine needs from Twilio.
///
/// Object-safe: use it as `Arc<dyn TwilioClient>`.
#[async_trait]
pub trait TwilioClient: Send + Sync {
    /// Fetches one page of calls: the first page for `filter` when `page` is
    /// `None`, otherwise the page the token points to (the filter is then
    /// already part of the token).
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError>;

    /// Fetches one call by SID.
    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError>;

    /// Lists every phone number the account owns (all pages).
    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError>;

    /// Fetches one page of the account's recordings (`Recordings.json`),
    /// newest first, like [`TwilioClient::list_calls_page`].
    async fn list_recordings_page(
        &self,
        filter: &RecordingFilter,
        page: Option<&PageToken>,
    ) -> Result<RecordingPage, TwilioError>;

    /// Fetches one recording by SID; [`TwilioError::NotFound`] once deleted.
    async fn fetch_recording(&self, sid: &RecordingSid) -> Result<Recording, TwilioError>;

    /// Fetches one page of the account's legacy transcriptions
    /// (`Transcriptions.json`), newest first. The API has no date filter:
    /// callers stop paging at the first transcription older than they need.
    async fn list_transcriptions_page(
        &self,
        page_size: u32,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError>;

    /// Fetches one page of Voice Intelligence transcripts (`/v2/Transcripts`
    /// on the intelligence base URL), without their sentences.
    async fn list_intelligence_transcripts_page(
        &self,
        filter: &TranscriptFilter,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError>;

    /// Every sentence of one Voice Intelligence transcript (all pages), in
    /// order.
    async fn transcript_sentences(
        &self,
        transcript_sid: &str,
    ) -> Result<Vec<Sentence>, TwilioError>;

    /// The audio of one recording, streamed: Twilio's bytes and
    /// `Content-Type`, redirects followed without credentials.
    /// [`TwilioError::NotFound`] when the recording is gone.
    async fn recording_audio(
        &self,
        sid: &RecordingSid,
        format: AudioFormat,
    ) -> Result<RecordingAudio, TwilioError>;

    /// Fetches one page of the account's messages (`Messages.json`), newest
    /// first, like [`TwilioClient::list_calls_page`].
    async fn list_texts_page(
        &self,
        filter: &TextFilter,
        page: Option<&PageToken>,
    ) -> Result<TextPage, TwilioError>;

    /// The media of one MMS (`Messages/{sid}/Media.json`, all pages).
    async fn text_media(&self, sid: &MessageSid) -> Result<Vec<TextMedia>, TwilioError>;

    /// The content of one media item of an MMS, streamed like
    /// [`TwilioClient::recording_audio`] (Twilio's `Content-Type`, redirects
    /// followed without credentials).
    async fn text_media_content(
        &self,
        sid: &MessageSid,
        media_sid: &str,
    ) -> Result<RecordingAudio, TwilioError>;

    /// Sends a text (`POST Messages.json`): Twilio's record of it, or its
    /// refusal ([`TwilioError::Api`] with Twilio's code and message).
    /// Never retried: a repeated request could send it twice.
    async fn send_text(&self, text: &OutgoingText) -> Result<Text, TwilioError>;
}

/// Every page of `filter` as a stream, following `next_page_uri` until the
/// last page. The stream ends after the first error.
///
/// ```no_run
/// # async fn demo(client: &dyn callview_core::TwilioClient) {
/// use futures::TryStreamExt;
/// use callview_core::twilio::{call_pages, CallFilter};
/// let pages: Vec<_> = call_pages(client, CallFilter::default()).try_collect().await.unwrap();
/// # }
/// ```
pub fn call_pages(
    client: &dyn TwilioClient,
    filter: CallFilter,
) -> impl Stream<Item = Result<CallPage, TwilioError>> + '_ {
    pages(
        move |token| {
            let filter = filter.clone();
            async move { client.list_calls_page(&filter, token.as_ref()).await }
        },
        |p: &CallPage| p.next.clone(),
    )
}

/// Implements the recording and transcript methods of [`TwilioClient`] by
/// forwarding them to a field that is itself a client: for wrappers (fault
/// injection, timing) that only change how calls are listed. Use it inside
/// the `#[async_trait] impl TwilioClient for ...` block.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use callview_core::call::{Call, CallSid};
/// use callview_core::twilio::{CallFilter, CallPage, IncomingNumber, PageToken, TwilioClient, TwilioError};
///
/// struct Counting { inner: Arc<dyn TwilioClient> }
///
/// #[async_trait]
/// impl TwilioClient for Counting {
///     async fn list_calls_page(&self, f: &CallFilter, p: Option<&PageToken>) -> Result<CallPage, TwilioError> {
///         self.inner.list_calls_page(f, p).await
///     }
///     async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
///         self.inner.fetch_call(sid).await
///     }
///     async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
///         self.inner.list_incoming_numbers().await
///     }
///     callview_core::forward_media_methods!(inner);
/// }
/// ```
#[macro_export]
macro_rules! forward_media_methods {
    ($field:ident) => {
        fn list_recordings_page<'a, 'b, 'c, 'at>(
            &'a self,
            filter: &'b $crate::twilio::RecordingFilter,
            page: ::std::option::Option<&'c $crate::twilio::PageToken>,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::twilio::RecordingPage,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            'c: 'at,
            Self: 'at,
        {
            self.$field.list_recordings_page(filter, page)
        }

        fn fetch_recording<'a, 'b, 'at>(
            &'a self,
            sid: &'b $crate::recording::RecordingSid,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::recording::Recording,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            Self: 'at,
        {
            self.$field.fetch_recording(sid)
        }

        fn list_transcriptions_page<'a, 'c, 'at>(
            &'a self,
            page_size: u32,
            page: ::std::option::Option<&'c $crate::twilio::PageToken>,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::twilio::TranscriptPage,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'c: 'at,
            Self: 'at,
        {
            self.$field.list_transcriptions_page(page_size, page)
        }

        fn list_intelligence_transcripts_page<'a, 'b, 'c, 'at>(
            &'a self,
            filter: &'b $crate::twilio::TranscriptFilter,
            page: ::std::option::Option<&'c $crate::twilio::PageToken>,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::twilio::TranscriptPage,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            'c: 'at,
            Self: 'at,
        {
            self.$field.list_intelligence_transcripts_page(filter, page)
        }

        fn transcript_sentences<'a, 'b, 'at>(
            &'a self,
            transcript_sid: &'b str,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            ::std::vec::Vec<$crate::recording::Sentence>,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            Self: 'at,
        {
            self.$field.transcript_sentences(transcript_sid)
        }

        fn recording_audio<'a, 'b, 'at>(
            &'a self,
            sid: &'b $crate::recording::RecordingSid,
            format: $crate::twilio::AudioFormat,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::twilio::RecordingAudio,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            Self: 'at,
        {
            self.$field.recording_audio(sid, format)
        }

        fn list_texts_page<'a, 'b, 'c, 'at>(
            &'a self,
            filter: &'b $crate::twilio::TextFilter,
            page: ::std::option::Option<&'c $crate::twilio::PageToken>,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::twilio::TextPage,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            'c: 'at,
            Self: 'at,
        {
            self.$field.list_texts_page(filter, page)
        }

        fn text_media<'a, 'b, 'at>(
            &'a self,
            sid: &'b $crate::text::MessageSid,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            ::std::vec::Vec<$crate::text::TextMedia>,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            Self: 'at,
        {
            self.$field.text_media(sid)
        }

        fn text_media_content<'a, 'b, 'c, 'at>(
            &'a self,
            sid: &'b $crate::text::MessageSid,
            media_sid: &'c str,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::twilio::RecordingAudio,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            'c: 'at,
            Self: 'at,
        {
            self.$field.text_media_content(sid, media_sid)
        }

        fn send_text<'a, 'b, 'at>(
            &'a self,
            text: &'b $crate::twilio::OutgoingText,
        ) -> ::std::pin::Pin<
            ::std::boxed::Box<
                dyn ::std::future::Future<
                        Output = ::std::result::Result<
                            $crate::text::Text,
                            $crate::twilio::TwilioError,
                        >,
                    > + ::std::marker::Send
                    + 'at,
            >,
        >
        where
            'a: 'at,
            'b: 'at,
            Self: 'at,
        {
            self.$field.send_text(text)
        }
    };
}
