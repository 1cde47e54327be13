//! midi2img-compatible PNG piano rolls to and from [`PianoRoll`]s.
//!
//! The layout is midi2img's: one pixel row per pitch, 106 rows, row 0 (the top of
//! the image) is MIDI 21, the lowest note; one column per step; a pixel is on when
//! its brightness is above 127.5. midi2img reads column 0 as raw values and so
//! loses its notes; here every column is read the same way. A PNG carries no
//! tempo or instrument, so the caller supplies the roll's metadata.

use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};

use crate::atomic::write_atomically;
use crate::limits;
use crate::roll::{MAX_STEPS, PITCH_COUNT, PianoRoll, RollError, RollMeta};

/// Columns per image when exporting in chunks, as midi2img does.
pub const MIDI2IMG_CHUNK_COLUMNS: usize = 100;

/// Why PNG bytes are not a piano roll.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PngError {
    /// The bytes are not a PNG the decoder can read.
    #[error("not a readable PNG image ({0}); expected a midi2img piano roll, 106 pixels high")]
    Unreadable(String),
    /// Not 106 rows.
    #[error(
        "the image is {width}x{height} pixels; a midi2img piano roll is 106 pixels high \
         (one row per pitch, MIDI 21 at the top) and any width"
    )]
    WrongHeight { width: u32, height: u32 },
    /// More columns than a roll may have.
    #[error("the image is {width} pixels wide; a roll holds at most {MAX_STEPS} steps")]
    TooWide { width: u32 },
    /// An interlaced image too large to decode whole.
    #[error(
        "the image is interlaced and {width} pixels wide: decoding it would take {bytes} \
         bytes, more than the {} allowed; save it without interlacing",
        limits::PNG_DECODE_BYTES
    )]
    InterlacedTooLarge { width: u32, bytes: usize },
    /// The roll has no steps, and a PNG needs at least one column.
    #[error("the roll is empty: a PNG needs at least one column")]
    EmptyRoll,
    /// The PNG encoder failed.
    #[error("cannot encode PNG: {0}")]
    Encode(String),
    #[error(transparent)]
    Roll(#[from] RollError),
}

/// A PNG file operation that failed, with the file it was about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", path.display())]
    Png { path: PathBuf, source: PngError },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Decodes a midi2img PNG (any bit depth, grey, RGB or palette, with or
/// without alpha; colour pixels use the plain mean of R, G and B; alpha is
/// ignored). The size is checked from the header before any pixel is
/// decoded, and rows are read one at a time, so memory stays at the roll's
/// masks plus one row. Interlaced images must be decoded whole: those are
/// refused above [`PNG_DECODE_BYTES`](limits::PNG_DECODE_BYTES).
pub fn decode_png(bytes: &[u8], meta: RollMeta) -> Result<PianoRoll, PngError> {
    let unreadable = |e: png::DecodingError| PngError::Unreadable(e.to_string());
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: limits::PNG_DECODE_BYTES,
        },
    );
    decoder.set_transformations(png::Transformations::EXPAND);
    let header = decoder.read_header_info().map_err(unreadable)?;
    let (width, height, interlaced) = (header.width, header.height, header.interlaced);
    if height as usize != PITCH_COUNT {
        return Err(PngError::WrongHeight { width, height });
    }
    if width as usize > MAX_STEPS {
        return Err(PngError::TooWide { width });
    }
    let mut reader = decoder.read_info().map_err(unreadable)?;
    let (colour, depth) = reader.output_color_type();
    let pixel = Pixel::new(colour, depth);
    let mut sounding = vec![0u128; width as usize];
    if interlaced {
        let size = reader.output_buffer_size().unwrap_or(usize::MAX);
        if size > limits::PNG_DECODE_BYTES {
            return Err(PngError::InterlacedTooLarge { width, bytes: size });
        }
        let mut image = vec![0u8; size];
        let frame = reader.next_frame(&mut image).map_err(unreadable)?;
        for (pitch, row) in image.chunks_exact(frame.line_size).enumerate() {
            pixel.mark(row, pitch, &mut sounding);
        }
    } else {
        let mut pitch = 0;
        while let Some(row) = reader.next_row().map_err(unreadable)? {
            pixel.mark(row.data(), pitch, &mut sounding);
            pitch += 1;
        }
    }
    Ok(PianoRoll::from_sounding(sounding, meta)?)
}

/// How a decoded row's pixels read as on or off.
#[derive(Clone, Copy, Debug)]
struct Pixel {
    channels: usize,
    /// Bytes per sample: 1 or 2 (big-endian).
    sample_bytes: usize,
    /// Grey (one channel counts) or colour (the mean of R, G and B counts).
    colour: bool,
}

impl Pixel {
    fn new(colour: png::ColorType, depth: png::BitDepth) -> Self {
        use png::ColorType::{Grayscale, GrayscaleAlpha, Indexed, Rgb, Rgba};
        let channels = match colour {
            Grayscale | Indexed => 1,
            GrayscaleAlpha => 2,
            Rgb => 3,
            Rgba => 4,
        };
        Self {
            channels,
            sample_bytes: if depth == png::BitDepth::Sixteen {
                2
            } else {
                1
            },
            colour: matches!(colour, Rgb | Rgba),
        }
    }

    /// Sets bit `pitch` of every step whose pixel in `row` is brighter than
    /// half: `v > max / 2` for grey, `(r + g + b) / 3 > max / 2` for colour.
    fn mark(self, row: &[u8], pitch: usize, sounding: &mut [u128]) {
        let max = if self.sample_bytes == 2 {
            65_535u32
        } else {
            255
        };
        let sample = |bytes: &[u8], i: usize| -> u32 {
            let at = i * self.sample_bytes;
            if self.sample_bytes == 2 {
                u32::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]))
            } else {
                u32::from(bytes[at])
            }
        };
        let stride = self.channels * self.sample_bytes;
        for (step, pixel) in sounding.iter_mut().zip(row.chunks_exact(stride)) {
            let on = if self.colour {
                2 * (sample(pixel, 0) + sample(pixel, 1) + sample(pixel, 2)) > 3 * max
            } else {
                2 * sample(pixel, 0) > max
            };
            if on {
                *step |= 1u128 << pitch;
            }
        }
    }
}

/// Encodes steps `start..end` of a roll as a midi2img PNG: 8-bit grey, 0 or
/// 255, written a row (one pitch) at a time.
pub fn encode_png(roll: &PianoRoll, start: usize, end: usize) -> Result<Vec<u8>, PngError> {
    let end = end.min(roll.steps());
    if start >= end {
        return Err(PngError::EmptyRoll);
    }
    let masks = &roll.sounding_masks()[start..end];
    let encode = |e: png::EncodingError| PngError::Encode(e.to_string());
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, masks.len() as u32, PITCH_COUNT as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode)?;
        let mut stream = writer.stream_writer().map_err(encode)?;
        let mut row = vec![0u8; masks.len()];
        for pitch in 0..PITCH_COUNT {
            for (pixel, mask) in row.iter_mut().zip(masks) {
                *pixel = if mask >> pitch & 1 == 1 { 255 } else { 0 };
            }
            stream
                .write_all(&row)
                .map_err(|e| PngError::Encode(e.to_string()))?;
        }
        stream.finish().map_err(encode)?;
    }
    Ok(bytes)
}

/// Reads a midi2img PNG file as a roll with the given metadata.
pub fn import_png_file(path: &Path, meta: RollMeta) -> Result<PianoRoll, ImageFileError> {
    let bytes = std::fs::read(path).map_err(|source| ImageFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    decode_png(&bytes, meta).map_err(|source| ImageFileError::Png {
        path: path.to_owned(),
        source,
    })
}

/// Writes a whole roll as one PNG, atomically.
pub fn export_png_file(roll: &PianoRoll, path: &Path) -> Result<(), ImageFileError> {
    write_png(roll, 0, roll.steps(), path)
}

/// Writes a roll as PNGs of `columns` steps each, named `<stem>_<k>.png` (k from 0)
/// beside `path`; the last chunk keeps its true width. Returns the paths written.
pub fn export_png_chunks(
    roll: &PianoRoll,
    path: &Path,
    columns: usize,
) -> Result<Vec<PathBuf>, ImageFileError> {
    let stem = path
        .file_stem()
        .map_or_else(|| "roll".into(), |s| s.to_string_lossy().into_owned());
    let folder = path.parent().unwrap_or(Path::new(""));
    let columns = columns.max(1);
    if roll.is_empty() {
        return Err(ImageFileError::Png {
            path: path.to_owned(),
            source: PngError::EmptyRoll,
        });
    }
    (0..roll.steps().div_ceil(columns))
        .map(|k| {
            let chunk_path = folder.join(format!("{stem}_{k}.png"));
            write_png(roll, k * columns, (k + 1) * columns, &chunk_path)?;
            Ok(chunk_path)
        })
        .collect()
}

fn write_png(
    roll: &PianoRoll,
    start: usize,
    end: usize,
    path: &Path,
) -> Result<(), ImageFileError> {
    let bytes = encode_png(roll, start, end).map_err(|source| ImageFileError::Png {
        path: path.to_owned(),
        source,
    })?;
    write_atomically(path, &bytes).map_err(|source| ImageFileError::Write {
        path: path.to_owned(),
        source,
    })
}
