//! Small deterministic PNG images: the media of simulated MMS.
//!
//! A hand-written encoder (8-bit RGB, no interlace) whose image data is a
//! zlib stream of *stored* deflate blocks: no compression, so no codec to
//! get wrong, and every PNG decoder reads it. A 48 × 48 picture is about
//! 7 KB.

use crate::generator::splitmix64;

/// Width and height of every generated picture, in pixels.
pub(crate) const SIDE: u32 = 48;

/// The PNG file signature.
pub(crate) const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// A picture derived from `seed`: a coloured square with a pattern
/// (stripes, checks or rings in a second colour) and a frame. The same seed
/// always gives the same bytes.
pub(crate) fn picture(seed: u64) -> Vec<u8> {
    let mix = splitmix64(seed);
    let colour = |bits: u64| -> [u8; 3] {
        [
            64 + (bits & 0x7f) as u8,
            64 + ((bits >> 8) & 0x7f) as u8,
            64 + ((bits >> 16) & 0x7f) as u8,
        ]
    };
    let back = colour(mix);
    let fore = colour(!mix >> 24);
    let pattern = (mix >> 56) % 3;
    let side = SIDE as i64;
    let mut pixels = Vec::with_capacity((SIDE * SIDE * 3) as usize);
    for y in 0..side {
        for x in 0..side {
            let frame = x < 2 || y < 2 || x >= side - 2 || y >= side - 2;
            let on = match pattern {
                0 => (x + y) / 6 % 2 == 0,
                1 => (x / 8 + y / 8) % 2 == 0,
                _ => {
                    let (dx, dy) = (x - side / 2, y - side / 2);
                    let r2 = dx * dx + dy * dy;
                    (r2 / 48) % 2 == 0
                }
            };
            let rgb = if frame {
                [32, 32, 32]
            } else if on {
                fore
            } else {
                back
            };
            pixels.extend_from_slice(&rgb);
        }
    }
    encode_rgb(SIDE, SIDE, &pixels)
}

/// Encodes `pixels` (RGB, row after row, `width * height * 3` bytes) as a
/// PNG file.
pub(crate) fn encode_rgb(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let row = width as usize * 3;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in pixels.chunks(row).take(height as usize) {
        raw.push(0); // filter type: none
        raw.extend_from_slice(line);
    }
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = SIGNATURE.to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Appends one chunk: length, type, data, CRC of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream holding `data` in stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(0xffff).collect()
    };
    let count = blocks.len();
    for (i, block) in blocks.into_iter().enumerate() {
        out.push(u8::from(i + 1 == count)); // BFINAL, BTYPE 00
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// CRC-32 (ISO 3309, as PNG uses it).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// Adler-32 (zlib's checksum).
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    b << 16 | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn pictures_are_deterministic_pngs_of_a_few_kilobytes() {
        let a = picture(7);
        assert_eq!(a, picture(7));
        assert_ne!(a, picture(8));
        assert_eq!(a[..8], SIGNATURE);
        assert_eq!(&a[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes([a[16], a[17], a[18], a[19]]), SIDE);
        assert!((4_000..10_000).contains(&a.len()), "{}", a.len());
        assert!(a.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
    }
}
