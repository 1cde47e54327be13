//! The time signature a MIDI file gives reaches the roll, its meter and the
//! exported file; files without one, and PNGs, are 4/4.

use cadenza::files::{LoadOptions, SaveOptions, load_roll, save_roll};
use cadenza::meter::TimeSignature;
use cadenza::midi::{ExportOptions, ImportOptions, export, import, read_notes};
use cadenza::roll::{PianoRoll, Pitch, RollMeta, RollNote};

use crate::helpers::{Track, cadenza, path, smf, text};

const PPQ: u16 = 480;

fn signature(numerator: u8, denominator: u8) -> TimeSignature {
    TimeSignature::new(numerator, denominator).unwrap()
}

/// One format-0 track: `before` events at tick 0, then a quarter-note C4.
fn one_note(before: impl FnOnce(&mut Track) -> &mut Track) -> Vec<u8> {
    let mut t = Track::default();
    before(&mut t).on(0, 0, 60, 100).off(480, 0, 60).end(0);
    smf(0, PPQ, &[t.take()])
}

#[test]
fn import_takes_the_files_signature_and_meter_follows_it() {
    // (numerator, denominator power) -> signature, steps per beat, beats per bar.
    let cases = [
        ((3, 2), signature(3, 4), 4, 3),
        ((6, 3), signature(6, 8), 6, 2),
        ((2, 2), signature(2, 4), 4, 2),
    ];
    for ((numerator, power), expected, per_beat, beats) in cases {
        let bytes = one_note(|t| t.time_signature(0, numerator, power));
        let (roll, report) = import(&bytes, &ImportOptions::default()).unwrap();
        let meta = roll.meta();
        assert_eq!(meta.time_signature, expected);
        let meter = meta.meter();
        assert_eq!(
            (meter.steps_per_beat(), meter.beats_per_bar()),
            (per_beat, beats),
            "{expected}"
        );
        assert_eq!(meter.steps_per_bar(), per_beat * beats);
        assert_eq!(report.time_signatures, 1);
    }

    // The meter is read on the roll's grid: 3/4 at two steps per quarter.
    let bytes = one_note(|t| t.time_signature(0, 3, 2));
    let options = ImportOptions {
        steps_per_quarter: 2,
        ..ImportOptions::default()
    };
    let meter = import(&bytes, &options).unwrap().0.meta().meter();
    assert_eq!((meter.steps_per_beat(), meter.steps_per_bar()), (2, 6));
}

#[test]
fn a_file_without_a_signature_is_common_time() {
    let bytes = one_note(|t| t.tempo(0, 500_000));
    let (roll, report) = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(roll.meta().time_signature, TimeSignature::COMMON);
    assert_eq!(roll.meta().meter().steps_per_bar(), 16);
    assert_eq!(report.time_signatures, 0);
    assert!(read_notes(&bytes).unwrap().time_signatures.is_empty());
}

#[test]
fn the_signature_in_force_at_the_first_note_wins() {
    // 3/4 from the start, 2/4 after the first note: the roll stays in 3/4.
    let mut t = Track::default();
    t.time_signature(0, 3, 2)
        .on(0, 0, 60, 100)
        .off(480, 0, 60)
        .time_signature(960, 2, 2)
        .on(0, 0, 62, 100)
        .off(480, 0, 62)
        .end(0);
    let bytes = smf(0, PPQ, &[t.take()]);
    let file = read_notes(&bytes).unwrap();
    assert_eq!(
        file.time_signatures,
        vec![(0, signature(3, 4)), (1440, signature(2, 4))]
    );
    let (roll, report) = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(roll.meta().time_signature, signature(3, 4));
    assert_eq!(report.time_signatures, 2);

    // Two before the first note: the later one is in force.
    let bytes = one_note(|t| t.time_signature(0, 3, 2).time_signature(0, 6, 3));
    let roll = import(&bytes, &ImportOptions::default()).unwrap().0;
    assert_eq!(roll.meta().time_signature, signature(6, 8));

    // Only after the first note (a pickup written before the metre): that one.
    let mut t = Track::default();
    t.on(0, 0, 60, 100)
        .off(240, 0, 60)
        .time_signature(0, 6, 3)
        .on(0, 0, 62, 100)
        .off(480, 0, 62)
        .end(0);
    let roll = import(&smf(0, PPQ, &[t.take()]), &ImportOptions::default())
        .unwrap()
        .0;
    assert_eq!(roll.meta().time_signature, signature(6, 8));
}

#[test]
fn the_conductor_tracks_signature_applies_to_the_other_tracks() {
    let mut conductor = Track::default();
    conductor.time_signature(0, 2, 2).tempo(0, 500_000).end(0);
    let mut notes = Track::default();
    notes.on(960, 0, 60, 100).off(480, 0, 60).end(0);
    let bytes = smf(1, PPQ, &[conductor.take(), notes.take()]);
    let roll = import(&bytes, &ImportOptions::default()).unwrap().0;
    assert_eq!(roll.meta().time_signature, signature(2, 4));
}

#[test]
fn impossible_signatures_are_skipped() {
    // A 1/128 denominator (power 7) and a numerator of 0, then a real 3/4.
    let bytes = one_note(|t| {
        t.time_signature(0, 4, 7)
            .time_signature(0, 0, 2)
            .time_signature(0, 3, 2)
    });
    let (roll, report) = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(roll.meta().time_signature, signature(3, 4));
    assert_eq!(report.time_signatures, 1);

    let bytes = one_note(|t| t.time_signature(0, 5, 9));
    let (roll, report) = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(roll.meta().time_signature, TimeSignature::COMMON);
    assert_eq!(report.time_signatures, 0);
}

#[test]
fn a_midi_round_trip_keeps_the_signature() {
    for (numerator, power, expected) in [
        (3, 2, signature(3, 4)),
        (6, 3, signature(6, 8)),
        (2, 2, signature(2, 4)),
    ] {
        let bytes = one_note(|t| t.time_signature(0, numerator, power));
        let roll = import(&bytes, &ImportOptions::default()).unwrap().0;
        let exported = export(&roll, &ExportOptions::default());
        assert!(
            exported
                .windows(7)
                .any(|w| w == [0xFF, 0x58, 0x04, numerator, power, 24, 8]),
            "{expected} event in the exported bytes"
        );
        let file = read_notes(&exported).unwrap();
        assert_eq!(file.time_signatures, vec![(0, expected)]);
        let back = import(&exported, &ImportOptions::default()).unwrap().0;
        assert_eq!(back.meta().time_signature, expected);
        assert_eq!(back, roll);
    }
}

#[test]
fn a_roll_without_a_metre_exports_common_time() {
    let roll = PianoRoll::new(4, RollMeta::default()).unwrap();
    let bytes = export(&roll, &ExportOptions::default());
    assert!(
        bytes
            .windows(7)
            .any(|w| w == [0xFF, 0x58, 0x04, 4, 2, 24, 8])
    );
}

#[test]
fn a_png_has_no_metre_and_loads_in_common_time() {
    let dir = tempfile::tempdir().unwrap();
    let meta = RollMeta {
        time_signature: signature(3, 4),
        ..RollMeta::default()
    };
    let note = RollNote {
        start: 0,
        pitch: Pitch::from_midi(60).unwrap(),
        len: 2,
    };
    let roll = PianoRoll::from_notes(12, [note], meta).unwrap();
    let png = dir.path().join("waltz.png");
    save_roll(&roll, &png, &SaveOptions::default()).unwrap();
    let loaded = load_roll(&png, &LoadOptions::default()).unwrap().roll;
    assert_eq!(loaded.meta().time_signature, TimeSignature::COMMON);
    assert_eq!(loaded.sounding_masks(), roll.sounding_masks());
}

#[test]
fn info_shows_the_signature_and_counts_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("waltz.mid");
    std::fs::write(&file, one_note(|t| t.time_signature(0, 3, 2))).unwrap();

    let out = cadenza(&["info", path(&file), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["time_signature"], "3/4");
    assert_eq!(info["import_report"]["time_signatures"], 1);

    let out = cadenza(&["info", path(&file)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("BPM in 3/4"), "{shown}");
    assert!(shown.contains("1 time-signature events"), "{shown}");
}

#[test]
fn metre_changes_are_kept_even_before_the_first_note() {
    // A bar of 4/4 rest, then 3/4: the roll starts in 4/4 and changes at
    // step 16, and both signatures come back out.
    let mut t = Track::default();
    t.time_signature(0, 4, 2)
        .time_signature(4 * u32::from(PPQ), 3, 2)
        .on(0, 0, 60, 100)
        .off(u32::from(PPQ), 0, 60)
        .end(0);
    let (roll, _) = import(&smf(0, PPQ, &[t.take()]), &ImportOptions::default()).unwrap();
    assert_eq!(roll.meta().time_signature, signature(4, 4));
    assert_eq!(roll.signature_at(16), signature(3, 4));
    assert_eq!(roll.bar_starts()[..2], [0, 16]);
    let back = read_notes(&export(&roll, &ExportOptions::default())).unwrap();
    let signatures: Vec<_> = back.time_signatures.iter().map(|s| s.1).collect();
    assert_eq!(signatures, vec![signature(4, 4), signature(3, 4)]);
}
