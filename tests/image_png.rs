//! midi2img PNG import and export.

use std::io::Cursor;

use ::image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use cadenza::files::{LoadOptions, RollFileError, SaveOptions, load_roll, save_roll};
use cadenza::image::{ImageFileError, PngError, decode_png, encode_png};
use cadenza::roll::{PianoRoll, Pitch, RollMeta, RollNote};

fn png_bytes(image: &DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

/// Pixels that are on, as (column, MIDI pitch).
fn cells(roll: &PianoRoll) -> Vec<(usize, u8)> {
    let mut cells = Vec::new();
    for step in 0..roll.steps() {
        for pitch in Pitch::all() {
            if roll.is_sounding(step, pitch) {
                cells.push((step, pitch.midi()));
            }
        }
    }
    cells
}

#[test]
fn row_0_is_the_lowest_note_and_column_0_is_read_like_the_others() {
    let image = ImageBuffer::from_fn(5, 106, |x, y| {
        Luma([
            if (x, y) == (0, 0) || (x, y) == (0, 39) || (x, y) == (4, 105) {
                255u8
            } else {
                0
            },
        ])
    });
    let roll = decode_png(
        &png_bytes(&DynamicImage::ImageLuma8(image)),
        RollMeta::default(),
    )
    .unwrap();
    assert_eq!(roll.steps(), 5);
    assert_eq!(cells(&roll), vec![(0, 21), (0, 60), (4, 126)]);
}

#[test]
fn the_threshold_is_127_5_in_every_colour_type() {
    let on = |x: u32| x % 2 == 1;
    let grey = ImageBuffer::from_fn(4, 106, |x, _| Luma([if on(x) { 128u8 } else { 127 }]));
    let grey16 = ImageBuffer::from_fn(4, 106, |x, _| {
        Luma([if on(x) { 33_000u16 } else { 32_600 }])
    });
    let grey_alpha =
        ImageBuffer::from_fn(4, 106, |x, _| LumaA([if on(x) { 200u8 } else { 20 }, 255]));
    let rgb = ImageBuffer::from_fn(4, 106, |x, _| {
        // Mean of (255, 128, 0) = 127.67 is on; (255, 127, 0) = 127.33 is off.
        Rgb([255u8, if on(x) { 128 } else { 127 }, 0])
    });
    let rgba = ImageBuffer::from_fn(4, 106, |x, _| {
        Rgba([
            if on(x) { 255u8 } else { 0 },
            if on(x) { 255 } else { 0 },
            255,
            0,
        ])
    });
    for image in [
        DynamicImage::ImageLuma8(grey),
        DynamicImage::ImageLuma16(grey16),
        DynamicImage::ImageLumaA8(grey_alpha),
        DynamicImage::ImageRgb8(rgb),
        DynamicImage::ImageRgba8(rgba),
    ] {
        let kind = format!("{:?}", image.color());
        let roll = decode_png(&png_bytes(&image), RollMeta::default()).unwrap();
        for step in 0..4 {
            assert_eq!(
                roll.sounding_mask(step).count_ones(),
                if on(step as u32) { 106 } else { 0 },
                "{kind} column {step}"
            );
        }
    }
}

#[test]
fn wrong_height_and_garbage_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.png");
    std::fs::write(&short, png_bytes(&DynamicImage::new_luma8(10, 88))).unwrap();
    let error = load_roll(&short, &LoadOptions::default()).unwrap_err();
    let RollFileError::Image(ImageFileError::Png { path, source }) = &error else {
        panic!("unexpected {error:?}");
    };
    assert_eq!(path, &short);
    assert!(matches!(
        source,
        PngError::WrongHeight {
            width: 10,
            height: 88
        }
    ));
    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(
        message.contains("short.png") && message.contains("106"),
        "{message}"
    );

    let garbage = dir.path().join("garbage.png");
    std::fs::write(&garbage, b"\x89PNG\r\n\x1a\nthis is not the rest of a png").unwrap();
    let error = load_roll(&garbage, &LoadOptions::default()).unwrap_err();
    assert!(
        matches!(
            &error,
            RollFileError::Image(ImageFileError::Png {
                source: PngError::Unreadable(_),
                ..
            })
        ),
        "{error:?}"
    );
    assert!(matches!(
        decode_png(b"", RollMeta::default()),
        Err(PngError::Unreadable(_))
    ));
}

#[test]
fn export_writes_8_bit_grey_0_or_255_whole_or_in_100_column_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let notes = (0..250).map(|i| RollNote {
        start: i,
        pitch: Pitch::from_row(i % 106).unwrap(),
        len: 1,
    });
    let roll = PianoRoll::from_notes(250, notes, RollMeta::default()).unwrap();
    let bytes = encode_png(&roll, 0, roll.steps()).unwrap();
    let image = ::image::load_from_memory(&bytes).unwrap();
    assert_eq!(image.color(), ::image::ColorType::L8);
    assert_eq!((image.width(), image.height()), (250, 106));
    assert!(
        image
            .to_luma8()
            .pixels()
            .all(|p| p.0[0] == 0 || p.0[0] == 255)
    );

    let written = save_roll(
        &roll,
        &dir.path().join("song.png"),
        &SaveOptions {
            png_chunk_columns: Some(100),
            ..SaveOptions::default()
        },
    )
    .unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["song_0.png", "song_1.png", "song_2.png"]);
    let mut joined = Vec::new();
    for path in &written {
        let chunk = load_roll(path, &LoadOptions::default()).unwrap().roll;
        joined.extend_from_slice(chunk.sounding_masks());
    }
    assert_eq!(joined, roll.sounding_masks());
    assert!(matches!(
        encode_png(&PianoRoll::new(0, RollMeta::default()).unwrap(), 0, 0),
        Err(PngError::EmptyRoll)
    ));
}
