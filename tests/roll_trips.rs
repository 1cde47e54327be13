//! Roll -> MIDI -> roll is the identity, for rolls with explicit onsets and for
//! rolls that only say what sounds; export details.

use cadenza::meter::TimeSignature;
use cadenza::midi::{ExportOptions, ImportOptions, export, import, read_notes};
use cadenza::roll::{PITCH_COUNT, PianoRoll, Pitch, RollMeta, RollNote, Tempo};

use crate::helpers::Lcg;

/// Metres a roll may carry through a round trip, odd and compound ones included.
const SIGNATURES: [TimeSignature; 6] = [
    TimeSignature::COMMON,
    TimeSignature {
        numerator: 3,
        denominator: 4,
    },
    TimeSignature {
        numerator: 6,
        denominator: 8,
    },
    TimeSignature {
        numerator: 2,
        denominator: 2,
    },
    TimeSignature {
        numerator: 7,
        denominator: 8,
    },
    TimeSignature {
        numerator: 12,
        denominator: 16,
    },
];

fn random_meta(rng: &mut Lcg) -> RollMeta {
    RollMeta {
        steps_per_quarter: 1 + rng.below(24) as u8,
        tempo: Tempo::from_micros_per_quarter(200_000 + rng.below(1_000_000)),
        program: rng.below(128) as u8,
        time_signature: SIGNATURES[rng.below(SIGNATURES.len() as u32) as usize],
    }
}

fn import_as(bytes: &[u8], meta: &RollMeta) -> PianoRoll {
    let options = ImportOptions {
        steps_per_quarter: meta.steps_per_quarter,
        include_drums: false,
    };
    import(bytes, &options).unwrap().0
}

#[test]
fn rolls_with_onsets_survive_midi() {
    let mut rng = Lcg(1);
    for _ in 0..200 {
        let meta = random_meta(&mut rng);
        let steps = 1 + rng.below(300) as usize;
        let notes: Vec<RollNote> = (0..rng.below(120))
            .map(|_| RollNote {
                start: rng.below(steps as u32) as usize,
                pitch: Pitch::from_row(rng.below(PITCH_COUNT as u32) as usize).unwrap(),
                len: 1 + rng.below(8) as usize,
            })
            .collect();
        let roll = PianoRoll::from_notes(steps, notes, meta).unwrap();
        let bytes = export(&roll, &ExportOptions::default());
        assert_same_cells(&import_as(&bytes, &meta), &roll);
    }
}

#[test]
fn rolls_without_onsets_survive_midi() {
    let mut rng = Lcg(2);
    for _ in 0..200 {
        let meta = random_meta(&mut rng);
        let steps = rng.below(200) as usize;
        // Dense random cells: many runs, touching ones included.
        let sounding: Vec<u128> = (0..steps)
            .map(|_| {
                let mut mask = 0u128;
                for _ in 0..rng.below(12) {
                    mask |= 1 << rng.below(PITCH_COUNT as u32);
                }
                mask
            })
            .collect();
        let roll = PianoRoll::from_sounding(sounding, meta).unwrap();
        let bytes = export(&roll, &ExportOptions::default());
        assert_same_cells(&import_as(&bytes, &meta), &roll);
    }
}

#[test]
fn repeated_notes_and_silence_at_both_ends_survive() {
    let meta = RollMeta::default();
    let c4 = Pitch::from_midi(60).unwrap();
    let notes = [0, 1, 2].map(|i| RollNote {
        start: 4 + i,
        pitch: c4,
        len: 1,
    });
    let roll = PianoRoll::from_notes(16, notes, meta).unwrap();
    let bytes = export(&roll, &ExportOptions::default());
    let back = import_as(&bytes, &meta);
    assert_same_cells(&back, &roll);
    assert_eq!(back.note_count(), 3);
    assert_eq!(back.steps(), 16);
}

#[test]
fn export_writes_format_1_with_tempo_program_and_velocity() {
    let meta = RollMeta {
        steps_per_quarter: 4,
        tempo: Tempo::from_bpm(90.0).unwrap(),
        program: 19,
        ..RollMeta::default()
    };
    let roll = PianoRoll::from_notes(
        8,
        [RollNote {
            start: 2,
            pitch: Pitch::from_midi(67).unwrap(),
            len: 3,
        }],
        meta,
    )
    .unwrap();
    let bytes = export(
        &roll,
        &ExportOptions {
            velocity: 77,
            ..ExportOptions::default()
        },
    );
    let file = read_notes(&bytes).unwrap();
    assert_eq!(file.format, 1);
    assert_eq!(file.tracks, 2);
    assert_eq!(file.notes.len(), 1);
    assert_eq!(file.notes[0].velocity, 77);
    assert_eq!(file.tempo_changes.len(), 1);
    assert_eq!(file.program_changes, vec![(0, 0, 19)]);
    let (back, report) = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(back.meta(), &meta);
    assert!((report.initial_bpm - 90.0).abs() < 1e-3);
    assert!(
        bytes.windows(4).any(|w| w == [0xFF, 0x58, 0x04, 0x04]),
        "4/4 time signature"
    );
}

/// The same cells, onsets and meta (a roll written without parts comes back
/// with the one part it was written as).
fn assert_same_cells(back: &PianoRoll, roll: &PianoRoll) {
    assert_eq!(back.meta(), roll.meta(), "{} steps", roll.steps());
    assert_eq!(
        back.sounding_masks(),
        roll.sounding_masks(),
        "{} steps",
        roll.steps()
    );
    assert_eq!(
        back.onset_masks(),
        roll.onset_masks(),
        "{} steps",
        roll.steps()
    );
}
