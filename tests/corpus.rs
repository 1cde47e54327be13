//! The importer against real music: the independent reference reading of every
//! file of the test corpus (`tests/data/corpus`, a subset of the training
//! corpus), and round trips through MIDI and PNG.

use cadenza::image::{decode_png, encode_png};
use cadenza::midi::{ExportOptions, ImportOptions, export, import, read_notes};
use cadenza::roll::PianoRoll;

use crate::helpers::{corpus_files, data_dir};

/// Notes as the reference lists them: [channel, pitch, start, end, velocity].
type RefNote = [u64; 5];

#[test]
fn notes_agree_with_the_reference_reading_of_every_corpus_file() {
    let (listed, total_notes, mismatches) = reference_mismatches(&data_dir().join("corpus"));
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        listed,
        corpus_files(),
        "the reference lists every corpus file"
    );
    assert_eq!(listed.len(), 32);
    assert_eq!(total_notes, 11_539);
}

/// Reads every file `folder/reference-notes.jsonl` lists and compares its notes
/// and header with the reference: (files listed, sorted; notes read;
/// mismatches).
pub fn reference_mismatches(
    folder: &std::path::Path,
) -> (Vec<std::path::PathBuf>, usize, Vec<String>) {
    let corpus = folder;
    let lines = std::fs::read_to_string(corpus.join("reference-notes.jsonl")).unwrap();
    let mut listed = Vec::new();
    let mut total_notes = 0;
    let mut mismatches = Vec::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let reference: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = reference["file"].as_str().unwrap();
        let bytes = std::fs::read(corpus.join(name)).unwrap();
        let file = read_notes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        listed.push(corpus.join(name));

        let mut expected: Vec<RefNote> =
            serde_json::from_value(reference["notes"].clone()).unwrap();
        let mut actual: Vec<RefNote> = file
            .notes
            .iter()
            .map(|n| {
                [
                    u64::from(n.channel),
                    u64::from(n.pitch),
                    n.start_tick,
                    n.end_tick,
                    u64::from(n.velocity),
                ]
            })
            .collect();
        let order = |n: &RefNote| (n[2], n[1], n[0], n[3], n[4]);
        expected.sort_by_key(order);
        actual.sort_by_key(order);
        total_notes += actual.len();

        let header = (
            u64::from(file.format),
            file.tracks as u64,
            match file.timing {
                cadenza::midi::FileTiming::Metrical { ppq } => u64::from(ppq),
                cadenza::midi::FileTiming::Smpte { .. } => 0,
            },
        );
        let expected_header = (
            reference["format"].as_u64().unwrap(),
            reference["tracks"].as_u64().unwrap(),
            reference["ppq"].as_u64().unwrap(),
        );
        if header != expected_header {
            mismatches.push(format!(
                "{name}: header {header:?}, reference {expected_header:?}"
            ));
        }
        if actual != expected {
            let first = actual
                .iter()
                .zip(&expected)
                .position(|(a, e)| a != e)
                .unwrap_or(actual.len().min(expected.len()));
            mismatches.push(format!(
                "{name}: {} notes vs {} in the reference; first difference at #{first}: \
                 ours {:?}, reference {:?}",
                actual.len(),
                expected.len(),
                actual.get(first),
                expected.get(first)
            ));
        }
    }
    listed.sort();
    (listed, total_notes, mismatches)
}

#[test]
fn corpus_midi_round_trips_through_the_roll() {
    for path in corpus_files() {
        for steps_per_quarter in [4, 12] {
            let options = ImportOptions {
                steps_per_quarter,
                ..ImportOptions::default()
            };
            let bytes = std::fs::read(&path).unwrap();
            let (roll, report) = import(&bytes, &options).unwrap();
            assert_eq!(report.notes_kept, report.notes_read, "{}", path.display());
            assert!(roll.note_count() > 0, "{}", path.display());

            let again = export(&roll, &ExportOptions::default());
            let (roll2, _) = import(&again, &options).unwrap();
            assert_eq!(roll, roll2, "{} at {steps_per_quarter} spq", path.display());
        }
    }
}

#[test]
fn corpus_rolls_round_trip_through_png_as_sounding_masks() {
    for path in corpus_files().iter().step_by(10) {
        let (roll, _) = import(&std::fs::read(path).unwrap(), &ImportOptions::default()).unwrap();
        let png = encode_png(&roll, 0, roll.steps()).unwrap();
        let back = decode_png(&png, *roll.meta()).unwrap();
        let expected = PianoRoll::from_sounding(roll.sounding_masks().to_vec(), *roll.meta());
        assert_eq!(back, expected.unwrap(), "{}", path.display());
    }
}
