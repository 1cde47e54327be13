//! midi2img-compatible PNG piano rolls to and from [`PianoRoll`]s.
//!
//! The layout is midi2img's: one pixel row per pitch, 106 rows, row 0 (the top of
//! the image) is MIDI 21, the lowest note; one column per step; a pixel is on when
//! its brightness is above 127.5. midi2img reads column 0 as raw values and so
//! loses its notes; here every column is read the same way. A PNG carries no
//! tempo or instrument, so the caller supplies the roll's metadata.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use ::image::{DynamicImage, GrayImage, ImageDecoder, ImageReader, Luma};

use crate::atomic::write_atomically;
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

/// Decodes a midi2img PNG (8- or 16-bit, grey or RGB, with or without alpha;
/// colour pixels use the plain mean of R, G and B; alpha is ignored).
pub fn decode_png(bytes: &[u8], meta: RollMeta) -> Result<PianoRoll, PngError> {
    let unreadable = |e: ::image::ImageError| PngError::Unreadable(e.to_string());
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ::image::ImageFormat::Png);
    let mut limits = ::image::Limits::default();
    limits.max_image_width = Some(MAX_STEPS as u32);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(unreadable)?;
    let (width, height) = decoder.dimensions();
    if height as usize != PITCH_COUNT {
        return Err(PngError::WrongHeight { width, height });
    }
    if width as usize > MAX_STEPS {
        return Err(PngError::TooWide { width });
    }
    let image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    let width = image.width() as usize;
    let mut sounding = vec![0u128; width];
    let mut set = |x: u32, y: u32| sounding[x as usize] |= 1u128 << y;
    match &image {
        DynamicImage::ImageLuma8(grey) => {
            for (x, y, Luma([value])) in grey.enumerate_pixels() {
                if *value > 127 {
                    set(x, y);
                }
            }
        }
        other => {
            for (x, y, pixel) in other.to_rgb32f().enumerate_pixels() {
                if (pixel.0[0] + pixel.0[1] + pixel.0[2]) / 3.0 > 0.5 {
                    set(x, y);
                }
            }
        }
    }
    Ok(PianoRoll::from_sounding(sounding, meta)?)
}

/// Encodes steps `start..end` of a roll as a midi2img PNG: 8-bit grey, 0 or 255.
pub fn encode_png(roll: &PianoRoll, start: usize, end: usize) -> Result<Vec<u8>, PngError> {
    let end = end.min(roll.steps());
    if start >= end {
        return Err(PngError::EmptyRoll);
    }
    let masks = &roll.sounding_masks()[start..end];
    let image = GrayImage::from_fn(masks.len() as u32, PITCH_COUNT as u32, |x, y| {
        Luma([if masks[x as usize] >> y & 1 == 1 {
            255
        } else {
            0
        }])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ::image::ImageFormat::Png)
        .map_err(|e| PngError::Encode(e.to_string()))?;
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
