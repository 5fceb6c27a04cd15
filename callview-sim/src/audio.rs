//! Recording audio: WAV (RIFF PCM, 8 kHz mono 16-bit, as Twilio serves
//! `.wav`) and MP3 (MPEG-1 Layer III, 32 kHz mono, 32 kbit/s CBR) files of
//! a given length, holding a speech-like sound: syllables of a voiced tone
//! (a fundamental and two harmonics) rising and falling, with pauses
//! between words, its pitch and rhythm derived from a seed.
//!
//! Both encoders are written here (no codec dependency): the WAV samples
//! are synthesised directly; the MP3 frames are built in the frequency
//! domain (the decoder's spectral lines), Huffman-coded with table 1 and
//! without bit reservoir, so every frame stands alone. A few seconds of
//! either are generated once per file and repeated up to its length, so a
//! recording of an hour costs the same as one of four seconds, and the
//! body is served as slices of one shared buffer.

use bytes::Bytes;

use crate::generator::splitmix64;

/// WAV sample rate.
pub(crate) const WAV_RATE: u32 = 8_000;
/// Bytes of a WAV header (RIFF, `fmt `, `data`).
pub(crate) const WAV_HEADER: usize = 44;
/// MP3 sample rate (MPEG-1).
pub(crate) const MP3_RATE: u32 = 32_000;
/// Samples per MP3 frame (MPEG-1 Layer III: two granules of 576).
pub(crate) const MP3_FRAME_SAMPLES: u32 = 1_152;
/// Bytes per MP3 frame: 144 × 32 kbit/s ÷ 32 kHz, never padded.
pub(crate) const MP3_FRAME_BYTES: usize = 144;
/// The 4-byte header of every MP3 frame: sync, MPEG-1, Layer III, no CRC,
/// 32 kbit/s, 32 kHz, no padding, mono, original.
pub(crate) const MP3_HEADER: [u8; 4] = [0xFF, 0xFB, 0x18, 0xC4];

/// Granules per syllable in the MP3 (11 × 18 ms ≈ 0.2 s).
const MP3_SYLLABLE_GRANULES: usize = 11;
/// Syllables in one repeated pattern (20 × 0.2 s = 4 s).
const SYLLABLES: usize = 20;
/// WAV samples per syllable (0.2 s).
const WAV_SYLLABLE_SAMPLES: usize = 1_600;

/// One recording's audio in one format: what Twilio would send.
///
/// The bytes are a header followed by a pattern repeated up to the length;
/// [`AudioFile::chunks`] yields them as cheap slices.
///
/// ```
/// use callview_sim::AudioFile;
/// let wav = AudioFile::wav(7, 3);
/// assert_eq!(wav.content_type(), "audio/x-wav");
/// assert_eq!(wav.len(), 44 + 3 * 8_000 * 2);
/// let bytes = wav.to_vec();
/// assert_eq!(&bytes[..4], b"RIFF");
/// let mp3 = AudioFile::mp3(7, 3);
/// assert_eq!(mp3.content_type(), "audio/mpeg");
/// assert_eq!(&mp3.to_vec()[..2], &[0xFF, 0xFB]);
/// ```
#[derive(Clone, Debug)]
pub struct AudioFile {
    content_type: &'static str,
    header: Bytes,
    pattern: Bytes,
    /// Bytes after the header.
    body_len: u64,
}

impl AudioFile {
    /// A WAV file of `seconds` (8 kHz mono 16-bit PCM), its sound derived
    /// from `seed`.
    pub fn wav(seed: u64, seconds: u32) -> AudioFile {
        let data_len = u64::from(seconds) * u64::from(WAV_RATE) * 2;
        // A RIFF size is 32 bits: 37 hours of audio; longer is capped.
        let data_len = data_len.min(u64::from(u32::MAX) - 36);
        let data32 = data_len as u32;
        let mut header = Vec::with_capacity(WAV_HEADER);
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&(36 + data32).to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes()); // PCM
        header.extend_from_slice(&1u16.to_le_bytes()); // mono
        header.extend_from_slice(&WAV_RATE.to_le_bytes());
        header.extend_from_slice(&(WAV_RATE * 2).to_le_bytes()); // bytes per second
        header.extend_from_slice(&2u16.to_le_bytes()); // block align
        header.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
        header.extend_from_slice(b"data");
        header.extend_from_slice(&data32.to_le_bytes());
        AudioFile {
            content_type: "audio/x-wav",
            header: Bytes::from(header),
            pattern: Bytes::from(wav_pattern(seed)),
            body_len: data_len,
        }
    }

    /// An MP3 file of `seconds` (rounded up to whole frames of 36 ms),
    /// its sound derived from `seed`.
    pub fn mp3(seed: u64, seconds: u32) -> AudioFile {
        let frames = mp3_frames_for(seconds);
        AudioFile {
            content_type: "audio/mpeg",
            header: Bytes::new(),
            pattern: Bytes::from(mp3_pattern(seed)),
            body_len: frames * MP3_FRAME_BYTES as u64,
        }
    }

    /// `audio/x-wav` or `audio/mpeg`.
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// The file's length in bytes (its `Content-Length`).
    pub fn len(&self) -> u64 {
        self.header.len() as u64 + self.body_len
    }

    /// Whether the file has no bytes at all (never: a WAV has its header).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file as chunks of at most a few kilobytes, slices of shared
    /// buffers (no copy).
    pub fn chunks(&self) -> impl Iterator<Item = Bytes> + Send + 'static {
        const CHUNK: usize = 16 * 1024;
        let header = (!self.header.is_empty()).then(|| self.header.clone());
        let pattern = self.pattern.clone();
        let mut left = self.body_len;
        let mut at = 0usize;
        header.into_iter().chain(std::iter::from_fn(move || {
            if left == 0 || pattern.is_empty() {
                return None;
            }
            let take = (pattern.len() - at)
                .min(CHUNK)
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let chunk = pattern.slice(at..at + take);
            at = (at + take) % pattern.len();
            left -= take as u64;
            Some(chunk)
        }))
    }

    /// The whole file in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        for chunk in self.chunks() {
            out.extend_from_slice(&chunk);
        }
        out
    }
}

/// Frames of an MP3 of `seconds`: enough to cover it.
pub(crate) fn mp3_frames_for(seconds: u32) -> u64 {
    (u64::from(seconds) * u64::from(MP3_RATE)).div_ceil(u64::from(MP3_FRAME_SAMPLES))
}

/// The voice of one recording: a pitch and which syllables are pauses.
struct Voice {
    /// Fundamental frequency, Hz.
    pitch: f64,
    /// Per syllable: a pitch factor, or `None` for a pause.
    syllables: [Option<f64>; SYLLABLES],
}

impl Voice {
    fn new(seed: u64) -> Voice {
        let mut state = splitmix64(seed ^ 0x00A0_D10F);
        let mut next = move || {
            state = splitmix64(state);
            state
        };
        let pitch = 120.0 + (next() % 100) as f64;
        let mut syllables = [None; SYLLABLES];
        for (i, s) in syllables.iter_mut().enumerate() {
            let roll = next() % 100;
            // A pause every few syllables (and always the last one, so the
            // pattern repeats on silence).
            let pause = i == SYLLABLES - 1 || roll < 22;
            *s = (!pause).then(|| 0.85 + (next() % 40) as f64 / 100.0);
        }
        Voice { pitch, syllables }
    }
}

/// Four seconds of 16-bit little-endian PCM at 8 kHz.
fn wav_pattern(seed: u64) -> Vec<u8> {
    let voice = Voice::new(seed);
    let mut out = Vec::with_capacity(SYLLABLES * WAV_SYLLABLE_SAMPLES * 2);
    let rate = f64::from(WAV_RATE);
    for syllable in voice.syllables {
        let Some(factor) = syllable else {
            out.resize(out.len() + WAV_SYLLABLE_SAMPLES * 2, 0);
            continue;
        };
        let f0 = voice.pitch * factor;
        for n in 0..WAV_SYLLABLE_SAMPLES {
            let u = n as f64 / WAV_SYLLABLE_SAMPLES as f64;
            let envelope = (std::f64::consts::PI * u).sin();
            // A slight glide down through the syllable, as speech has.
            let phase = std::f64::consts::TAU * f0 * (n as f64 / rate) * (1.0 - 0.08 * u);
            let wave = phase.sin() + 0.5 * (2.0 * phase).sin() + 0.25 * (3.0 * phase).sin();
            let sample = (wave * envelope * 0.25 * 32_767.0 / 1.75) as i16;
            out.extend_from_slice(&sample.to_le_bytes());
        }
    }
    out
}

/// MSB-first bit writer.
struct Bits {
    out: Vec<u8>,
    bits: usize,
}

impl Bits {
    fn new(capacity: usize) -> Bits {
        Bits {
            out: Vec::with_capacity(capacity),
            bits: 0,
        }
    }

    fn put(&mut self, value: u32, count: u32) {
        for i in (0..count).rev() {
            if self.bits % 8 == 0 {
                self.out.push(0);
            }
            if (value >> i) & 1 == 1 {
                let last = self.out.len() - 1;
                self.out[last] |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
    }
}

/// One granule's spectrum: which spectral lines (of 576) sound, with their
/// signs, and the global gain (loudness).
#[derive(Clone, Default)]
struct Granule {
    /// `(line, negative)`, ascending lines.
    lines: Vec<(usize, bool)>,
    global_gain: u32,
}

impl Granule {
    /// The Huffman-coded big-values region (table 1: `|value| <= 1`):
    /// `(bits, number of bits, big_values pairs)`.
    fn encode(&self) -> (Bits, u32) {
        let mut bits = Bits::new(16);
        let Some(&(last, _)) = self.lines.last() else {
            return (bits, 0);
        };
        let pairs = last / 2 + 1;
        let value = |i: usize| {
            self.lines
                .iter()
                .find(|(l, _)| *l == i)
                .map(|(_, neg)| *neg)
        };
        for pair in 0..pairs {
            let x = value(2 * pair);
            let y = value(2 * pair + 1);
            // Huffman table 1 (ISO 11172-3, table B.7).
            match (x.is_some(), y.is_some()) {
                (false, false) => bits.put(0b1, 1),
                (false, true) => bits.put(0b001, 3),
                (true, false) => bits.put(0b01, 2),
                (true, true) => bits.put(0b000, 3),
            }
            for negative in [x, y].into_iter().flatten() {
                bits.put(u32::from(negative), 1);
            }
        }
        (bits, pairs as u32)
    }
}

/// One MP3 frame of two granules.
fn mp3_frame(granules: [&Granule; 2]) -> [u8; MP3_FRAME_BYTES] {
    let encoded = granules.map(Granule::encode);
    let mut side = Bits::new(17);
    side.put(0, 9); // main_data_begin: no bit reservoir
    side.put(0, 5); // private bits
    side.put(0, 4); // scfsi
    for (granule, (bits, pairs)) in granules.iter().zip(&encoded) {
        side.put(bits.bits as u32, 12); // part2_3_length (no scalefactors)
        side.put(*pairs, 9); // big_values
        side.put(granule.global_gain, 8);
        side.put(0, 4); // scalefac_compress: slen1 = slen2 = 0
        side.put(0, 1); // window_switching_flag: long blocks
        for _ in 0..3 {
            side.put(1, 5); // table_select: table 1 in every region
        }
        side.put(7, 4); // region0_count
        side.put(7, 3); // region1_count
        side.put(0, 1); // preflag
        side.put(0, 1); // scalefac_scale
        side.put(0, 1); // count1table_select (no count1 region is coded)
    }
    let mut main = Bits::new(MP3_FRAME_BYTES);
    for (bits, _) in &encoded {
        for i in 0..bits.bits {
            let bit = (bits.out[i / 8] >> (7 - i % 8)) & 1;
            main.put(u32::from(bit), 1);
        }
    }
    let mut frame = [0u8; MP3_FRAME_BYTES];
    frame[..4].copy_from_slice(&MP3_HEADER);
    frame[4..21].copy_from_slice(&side.out);
    let room = MP3_FRAME_BYTES - 21;
    let used = main.out.len().min(room);
    frame[21..21 + used].copy_from_slice(&main.out[..used]);
    frame
}

/// 110 frames (3.96 s) of MP3: 20 syllables of 11 granules.
fn mp3_pattern(seed: u64) -> Vec<u8> {
    let voice = Voice::new(seed);
    // Spectral line width at 32 kHz: 16 000 Hz / 576 lines.
    let line_hz = f64::from(MP3_RATE) / 2.0 / 576.0;
    let mut granules = Vec::with_capacity(SYLLABLES * MP3_SYLLABLE_GRANULES);
    for syllable in voice.syllables {
        for g in 0..MP3_SYLLABLE_GRANULES {
            let Some(factor) = syllable else {
                granules.push(Granule::default());
                continue;
            };
            let u = (g as f64 + 0.5) / MP3_SYLLABLE_GRANULES as f64;
            let envelope = (std::f64::consts::PI * u).sin();
            let f0 = voice.pitch * factor * (1.0 - 0.08 * u);
            let line = ((f0 / line_hz) as usize).max(2);
            let lines = (1..=3)
                .map(|h| (h * line, (g + h) % 2 == 1))
                .collect::<Vec<_>>();
            // A spectral value of 1 decodes to 2^((gain - 210) / 4).
            let amplitude = 0.12 * envelope;
            let global_gain = (210.0 + 4.0 * amplitude.log2()).clamp(0.0, 255.0) as u32;
            granules.push(Granule { lines, global_gain });
        }
    }
    let mut out = Vec::with_capacity(granules.len() / 2 * MP3_FRAME_BYTES);
    for pair in granules.chunks(2) {
        let second = pair.get(1).unwrap_or(&pair[0]);
        out.extend_from_slice(&mp3_frame([&pair[0], second]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_tile_and_lengths_follow_the_duration() {
        let wav = AudioFile::wav(1, 61).to_vec();
        assert_eq!(wav.len(), 44 + 61 * 16_000);
        let mp3 = AudioFile::mp3(1, 61).to_vec();
        assert_eq!(mp3.len() as u64, mp3_frames_for(61) * 144);
        assert_eq!(mp3.len() % MP3_FRAME_BYTES, 0);
        for frame in mp3.chunks(MP3_FRAME_BYTES) {
            assert_eq!(&frame[..4], &MP3_HEADER);
        }
        assert_eq!(AudioFile::mp3(1, 0).len(), 0);
        assert_eq!(AudioFile::wav(1, 0).len(), 44);
        assert_eq!(AudioFile::mp3(2, 9).to_vec(), AudioFile::mp3(2, 9).to_vec());
        assert_ne!(AudioFile::wav(2, 9).to_vec(), AudioFile::wav(3, 9).to_vec());
    }

    #[test]
    fn side_info_fits_and_granules_are_coded() {
        let mp3 = mp3_pattern(5);
        assert_eq!(mp3.len(), 110 * MP3_FRAME_BYTES);
        // Some frames carry sound (a non-zero part2_3_length).
        let sounding = mp3
            .chunks(MP3_FRAME_BYTES)
            .filter(|f| (u32::from(f[6] & 0x3F) << 6 | u32::from(f[7] >> 2)) != 0)
            .count();
        assert!(sounding > 50, "{sounding}");
    }
}
