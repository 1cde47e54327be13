//! Absurd sizes at every edge: command-line flags, model-file headers and
//! PNG headers are refused with one typed error, quickly, before anything
//! of that size is allocated.

use std::time::{Duration, Instant};

use cadenza::assets::shipped_model;
use cadenza::checkpoint::{Checkpoint, CheckpointError};
use cadenza::image::{PngError, decode_png};
use cadenza::roll::RollMeta;

use crate::helpers::{cadenza, path, text, with_header};

/// Runs `cadenza args` and checks it refused them: exit code 2, one line on
/// stderr naming `mentions`, in under 5 seconds.
fn refused(args: &[&str], mentions: &str) {
    let started = Instant::now();
    let out = cadenza(args);
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(stderr.contains(mentions), "{args:?}: {stderr}");
    assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
}

#[test]
fn absurd_sizes_on_the_command_line_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mid");
    let out = path(&out);
    refused(
        &["generate", "--out", out, "--steps", "4000000000000"],
        "steps 4000000000000 is outside the allowed 1..=16384",
    );
    refused(
        &["generate", "--out", out, "--variations", "100000000"],
        "variations 100000000 is outside",
    );
    refused(
        &["generate", "--out", out, "--temperature", "NaN"],
        "temperature NaN is outside",
    );
    refused(&["eval", ".", "--steps", "99999999999"], "steps");
    refused(&["eval", ".", "--stride", "0"], "stride 0 is outside");
    let data = path(dir.path());
    refused(
        &["train", data, "--out", out, "--epochs", "4000000000000"],
        "epochs",
    );
    refused(
        &["train", data, "--out", out, "--batch", "99999999"],
        "batch size",
    );
    refused(
        &["train", data, "--out", out, "--sequence-steps", "1000000"],
        "sequence steps",
    );
    refused(
        &["render", "x.mid", "y.wav", "--sample-rate", "4000000000"],
        "sample rate",
    );
    refused(
        &["convert", "x.mid", "y.png", "--jobs", "100000000"],
        "jobs",
    );
    refused(&["info", "x.mid", "--tempo", "1e300"], "tempo (BPM)");
    // A usage mistake clap finds is one line too.
    refused(&["generate", "--no-such-flag"], "--no-such-flag");
}

#[test]
fn batch_times_sequence_is_bounded_when_training() {
    let data = tempfile::tempdir().unwrap();
    crate::helpers::copy_demo_chorales(data.path());
    let model = data.path().join("model.cadenza");
    let started = Instant::now();
    let out = crate::helpers::train_one_epoch(
        data.path(),
        &model,
        &["--batch", "4096", "--sequence-steps", "1024"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("batch x sequence steps 4194304 is outside"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!model.exists());
}

/// The shipped roll model's file with its header edited (checksum fixed).
fn lying(edit: impl FnOnce(&mut serde_json::Value)) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::from_bytes(&with_header(shipped_model("roll").unwrap().bytes, edit))
}

#[test]
fn a_model_file_whose_header_lies_about_its_shape_is_a_typed_error() {
    // More units than the weights hold: refused before anything is built.
    let started = Instant::now();
    let error = lying(|header| header["config"]["units"] = 8192.into()).unwrap_err();
    assert!(
        matches!(error, CheckpointError::ShapeMismatch { found, .. } if found > 0),
        "{error}"
    );
    assert!(error.to_string().contains("parameters"), "{error}");
    // A size no network may have.
    let error =
        lying(|header| header["config"]["units"] = 4_000_000_000_000u64.into()).unwrap_err();
    assert!(matches!(error, CheckpointError::Header(_)), "{error}");
    assert!(error.to_string().contains("units"), "{error}");
    let error = lying(|header| header["config"]["pitches"] = 0.into()).unwrap_err();
    assert!(matches!(error, CheckpointError::Header(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The truth still loads.
    assert!(lying(|_| {}).is_ok());
}

/// A PNG signature and IHDR chunk for an 8-bit grey image of this size,
/// with no image data after it.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(width.to_be_bytes());
    chunk.extend(height.to_be_bytes());
    chunk.extend([8, 0, 0, 0, 0]);
    bytes.extend(13u32.to_be_bytes());
    bytes.extend(&chunk);
    bytes.extend(crc32fast::hash(&chunk).to_be_bytes());
    bytes
}

#[test]
fn png_sizes_are_checked_from_the_header_before_decoding() {
    let started = Instant::now();
    assert!(matches!(
        decode_png(&png_header(2_000_000_000, 106), RollMeta::default()),
        Err(PngError::TooWide {
            width: 2_000_000_000
        })
    ));
    assert!(matches!(
        decode_png(&png_header(100, 4_000_000), RollMeta::default()),
        Err(PngError::WrongHeight { .. })
    ));
    // The right size but no pixels: unreadable, not a panic.
    assert!(matches!(
        decode_png(&png_header(100, 106), RollMeta::default()),
        Err(PngError::Unreadable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(1));
}
