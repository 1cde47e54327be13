//! The `cadenza` binary as a user runs it: output, files written, exit codes.

use crate::helpers::{Track, cadenza, data_dir, path, smf, text};

#[test]
fn info_reports_a_corpus_file_as_text_and_json() {
    let file = data_dir().join("corpus/keyboard/bach-wtc1-prelude1-bwv846.mid");
    let out = cadenza(&["info", path(&file), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["format"], "midi");
    assert!(info["notes"].as_u64().unwrap() > 100);
    assert_eq!(info["steps_per_quarter"], 4);
    let report = &info["import_report"];
    assert_eq!(report["notes_kept"], report["notes_read"]);
    assert_eq!(report["timing"]["kind"], "metrical");

    let out = cadenza(&["info", path(&file)]);
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(shown.contains("notes") && shown.contains("BPM") && shown.contains("pitches"));
}

#[test]
fn info_without_a_file_describes_the_bundled_demo() {
    let out = cadenza(&["info"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("prelude-c-major-bwv846.mid"));
}

#[test]
fn convert_one_file_midi_to_png_to_midi() {
    let dir = tempfile::tempdir().unwrap();
    let source = data_dir().join("corpus/chorales/bwv1.6.mid");
    let png = dir.path().join("chorale.png");
    let out = cadenza(&["convert", path(&source), path(&png)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let image = ::image::open(&png).unwrap();
    assert_eq!(image.height(), 106);

    let midi = dir.path().join("back.mid");
    let out = cadenza(&[
        "convert",
        path(&png),
        path(&midi),
        "--tempo",
        "90",
        "--program",
        "19",
        "--velocity",
        "64",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cadenza(&["info", path(&midi), "--json"]);
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["program"], 19);
    assert!((info["tempo_bpm"].as_f64().unwrap() - 90.0).abs() < 1e-3);
    assert_eq!(info["steps"].as_u64().unwrap(), u64::from(image.width()));

    let chunks = dir.path().join("chunked.png");
    let out = cadenza(&["convert", path(&source), path(&chunks), "--chunk"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("chunked_0.png").is_file());
    assert!(dir.path().join("chunked_1.png").is_file());
}

#[test]
fn convert_a_folder_keeps_going_past_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    let mut t = Track::default();
    t.on(0, 0, 60, 100).off(480, 0, 60).end(0);
    std::fs::write(input.join("good.mid"), smf(1, 480, &[t.take()])).unwrap();
    std::fs::copy(
        data_dir().join("corpus/chorales/bwv2.6.mid"),
        input.join("nested/bwv2.6.mid"),
    )
    .unwrap();
    std::fs::write(input.join("empty.mid"), b"").unwrap();
    std::fs::write(input.join("notes.txt"), b"not music").unwrap();

    let output = dir.path().join("out");
    let out = cadenza(&["convert", path(&input), path(&output)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("empty.mid") && stderr.contains("empty"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1
    );
    let summary = text(&out.stdout);
    assert!(summary.contains("converted 2 of 3"), "{summary}");
    assert!(summary.contains("1 skipped"), "{summary}");
    assert!(output.join("good.png").is_file());
    assert!(output.join("nested/bwv2.6.png").is_file());

    // And back: PNG folder to MIDI folder.
    let back = dir.path().join("back");
    let out = cadenza(&["convert", path(&output), path(&back)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(back.join("nested/bwv2.6.mid").is_file());
}

#[test]
fn usage_and_fatal_errors_exit_2_with_one_line_naming_the_file() {
    let out = cadenza(&["convert"]);
    assert_eq!(out.status.code(), Some(2));

    let out = cadenza(&["info", "/no/such/file.mid"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot read /no/such/file.mid"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.mid");
    std::fs::write(&bad, b"RIFF....not midi").unwrap();
    let out = cadenza(&["convert", path(&bad), path(&dir.path().join("x.png"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad.mid"));

    let out = cadenza(&["info", "song.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown file type"));
}

#[test]
fn cadenza_with_a_file_that_is_not_there_says_so_and_exits_2() {
    let out = cadenza(&["/nonexistent/song.mid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot open /nonexistent/song.mid"),
        "{}",
        text(&out.stderr)
    );
}
