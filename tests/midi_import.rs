//! MIDI import details and bad input, on files built byte by byte.

use cadenza::midi::{ExportOptions, ImportError, ImportOptions, export, import, read_notes};
use cadenza::roll::{MAX_STEPS, Pitch};

use crate::helpers::{Lcg, Track, smf};

const PPQ: u16 = 480;

fn pitch(n: u8) -> Pitch {
    Pitch::from_midi(n).unwrap()
}

fn notes_of(roll: &cadenza::roll::PianoRoll) -> Vec<(usize, u8, usize)> {
    roll.notes()
        .iter()
        .map(|n| (n.start, n.pitch.midi(), n.len))
        .collect()
}

#[test]
fn format_0_with_running_status_and_velocity_0_note_offs() {
    let mut t = Track::default();
    t.tempo(0, 600_000)
        .raw(0, &[0x90, 60, 100]) // note on
        .raw(0, &[64, 90]) // running status: another note on
        .raw(480, &[60, 0]) // velocity 0 = note off
        .raw(0, &[64, 0])
        .end(0);
    let bytes = smf(0, PPQ, &[t.take()]);
    let (roll, report) = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&roll), vec![(0, 60, 4), (0, 64, 4)]);
    assert_eq!(report.format, 0);
    assert_eq!(report.notes_kept, 2);
    assert!((report.initial_bpm - 100.0).abs() < 1e-9);
    assert!((report.length_seconds - 0.6).abs() < 1e-9);
}

#[test]
fn sysex_and_meta_events_are_skipped() {
    let mut t = Track::default();
    t.raw(0, &[0xF0, 0x03, 0x7E, 0x09, 0xF7]) // sysex
        .raw(0, &[0xFF, 0x01, 0x04, b't', b'e', b'x', b't']) // text meta
        .raw(0, &[0xF7, 0x01, 0x00]) // escaped sysex
        .on(0, 0, 72, 80)
        .raw(0, &[0xFF, 0x05, 0x02, b'l', b'a']) // lyric between on and off
        .off(240, 0, 72)
        .end(0);
    let (roll, _) = import(&smf(0, PPQ, &[t.take()]), &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&roll), vec![(0, 72, 2)]);
}

#[test]
fn quantisation_is_in_beats_rounded_and_short_notes_keep_one_step() {
    let mut t = Track::default();
    // 480 PPQ at 4 steps per quarter: 120 ticks per step.
    t.on(59, 0, 60, 100) // tick 59 rounds to step 0
        .off(2, 0, 60) // tick 61: same step; the note keeps one step
        .on(0, 0, 62, 100) // tick 61 rounds to step 1 (half up at 60)
        .off(359, 0, 62) // tick 420 = 3.5 steps, rounds to 4
        .end(0);
    let (roll, _) = import(&smf(1, PPQ, &[t.take()]), &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&roll), vec![(0, 60, 1), (1, 62, 3)]);
}

#[test]
fn tempo_does_not_move_the_grid() {
    let build = |micros| {
        let mut t = Track::default();
        t.tempo(0, micros).on(0, 0, 60, 100).off(960, 0, 60).end(0);
        smf(1, PPQ, &[t.take()])
    };
    let (slow, _) = import(&build(1_000_000), &ImportOptions::default()).unwrap();
    let (fast, _) = import(&build(250_000), &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&slow), notes_of(&fast));
    assert!((slow.meta().tempo.bpm() - 60.0).abs() < 1e-9);
    assert!((fast.meta().tempo.bpm() - 240.0).abs() < 1e-9);
}

#[test]
fn overlapping_notes_of_one_pitch_pair_first_in_first_out() {
    let mut t = Track::default();
    t.on(0, 0, 60, 100)
        .on(240, 0, 60, 90) // a second C4 while the first sounds
        .off(240, 0, 60) // ends the first (tick 480)
        .off(480, 0, 60) // ends the second (tick 960)
        .end(0);
    let bytes = smf(1, PPQ, &[t.take()]);
    let file = read_notes(&bytes).unwrap();
    let spans: Vec<_> = file
        .notes
        .iter()
        .map(|n| (n.start_tick, n.end_tick, n.velocity))
        .collect();
    assert_eq!(spans, vec![(0, 480, 100), (240, 960, 90)]);
    let (roll, _) = import(&bytes, &ImportOptions::default()).unwrap();
    // Merged in the roll, both onsets kept.
    assert!(roll.is_onset(0, pitch(60)) && roll.is_onset(2, pitch(60)));
    assert_eq!(roll.sounding_cells(), 8);
}

#[test]
fn notes_left_open_end_at_their_tracks_last_event() {
    let mut t = Track::default();
    t.on(0, 0, 60, 100).on(480, 0, 67, 100).end(480);
    let (roll, report) = import(&smf(1, PPQ, &[t.take()]), &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&roll), vec![(0, 60, 8), (4, 67, 4)]);
    assert_eq!(report.notes_without_note_off, 2);
}

#[test]
fn drums_are_excluded_unless_asked_and_out_of_range_pitches_are_dropped() {
    let mut t = Track::default();
    t.on(0, 9, 36, 100)
        .off(120, 9, 36)
        .on(0, 0, 20, 100) // below A0
        .off(120, 0, 20)
        .on(0, 1, 127, 100) // above the top row
        .off(120, 1, 127)
        .on(0, 2, 21, 100)
        .off(120, 2, 21)
        .on(0, 2, 126, 100)
        .off(120, 2, 126)
        .end(0);
    let bytes = smf(1, PPQ, &[t.take()]);
    let (roll, report) = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&roll), vec![(3, 21, 1), (4, 126, 1)]);
    assert_eq!(report.dropped.drums, 1);
    assert_eq!(report.dropped.out_of_range, 2);
    assert_eq!(report.notes_read, 5);
    assert_eq!(report.channels, vec![1, 2, 3, 10]);

    let with_drums = ImportOptions {
        include_drums: true,
        ..ImportOptions::default()
    };
    let (roll, report) = import(&bytes, &with_drums).unwrap();
    assert_eq!(roll.note_count(), 3);
    assert_eq!(report.dropped.drums, 0);
}

#[test]
fn format_1_tracks_share_a_clock_and_format_2_tracks_play_in_turn() {
    let track = || {
        let mut t = Track::default();
        t.on(0, 0, 60, 100).off(480, 0, 60).end(0);
        t.take()
    };
    let (parallel, _) =
        import(&smf(1, PPQ, &[track(), track()]), &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&parallel), vec![(0, 60, 4)]);
    assert_eq!(
        parallel.note_count(),
        1,
        "two identical notes at once merge"
    );

    let (sequential, report) =
        import(&smf(2, PPQ, &[track(), track()]), &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&sequential), vec![(0, 60, 4), (4, 60, 4)]);
    assert_eq!(report.format, 2);
}

#[test]
fn smpte_timing_goes_through_the_tempo_map() {
    // -25 fps, 40 ticks per frame: 1000 ticks per second.
    let division = u16::from_be_bytes([(-25i8) as u8, 40]);
    let mut t = Track::default();
    t.tempo(0, 500_000) // 120 BPM: a quarter is 500 ticks, a step 125
        .on(500, 0, 60, 100)
        .off(500, 0, 60)
        .tempo(0, 1_000_000) // from tick 1000 (2 beats): 60 BPM, a step is 250 ticks
        .on(500, 0, 62, 100) // tick 1500 = beat 2.5 = step 10
        .off(1000, 0, 62) // tick 2500 = beat 3.5 = step 14
        .end(0);
    let (roll, report) = import(&smf(1, division, &[t.take()]), &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&roll), vec![(4, 60, 4), (10, 62, 4)]);
    assert!((report.length_seconds - 2.5).abs() < 1e-9);
    assert_eq!(report.tempo_changes, 2);
}

#[test]
fn the_main_program_is_that_of_the_busiest_channel() {
    let mut t = Track::default();
    t.program(0, 0, 40)
        .program(0, 1, 73)
        .on(0, 0, 60, 100)
        .off(120, 0, 60)
        .on(0, 1, 70, 100)
        .off(120, 1, 70)
        .on(0, 1, 72, 100)
        .off(120, 1, 72)
        .end(0);
    let (roll, report) = import(&smf(1, PPQ, &[t.take()]), &ImportOptions::default()).unwrap();
    assert_eq!(roll.meta().program, 73);
    assert_eq!(report.programs.len(), 2);
}

#[test]
fn bad_input_gets_typed_errors() {
    let opts = ImportOptions::default();
    let err = |bytes: &[u8]| import(bytes, &opts).unwrap_err();
    assert_eq!(err(b""), ImportError::Empty);
    assert_eq!(err(&[0x1f, 0x8b, 8, 0, 0, 0]), ImportError::Gzipped);
    assert_eq!(err(b"RIFX not a midi file"), ImportError::NotMidi);
    assert_eq!(err(b"%PDF-1.4"), ImportError::NotMidi);
    assert!(matches!(err(b"MThd\0\0"), ImportError::Malformed(_)));
    assert!(matches!(
        err(b"RIFF\x04\0\0\0RMXD"),
        ImportError::Malformed(_)
    ));

    let mut t = Track::default();
    t.on(0, 0, 60, 100).off(10, 0, 60).end(0);
    let minus_128_fps = u16::from_be_bytes([0x80, 40]);
    assert!(matches!(
        err(&smf(1, minus_128_fps, &[t.take()])),
        ImportError::Malformed(_)
    ));

    let mut t = Track::default();
    t.on(0, 0, 60, 100).off(10, 0, 60).end(0);
    let body = t.take();
    assert_eq!(
        err(&smf(1, 0, std::slice::from_ref(&body))),
        ImportError::ZeroPpq
    );
    let zero_subframes = u16::from_be_bytes([(-30i8) as u8, 0]);
    assert_eq!(
        err(&smf(1, zero_subframes, &[body])),
        ImportError::ZeroSmpteResolution
    );
    assert_eq!(err(&smf(1, PPQ, &[])), ImportError::NoTracks);
}

#[test]
fn rmid_files_are_unwrapped() {
    let mut t = Track::default();
    t.on(0, 0, 60, 100).off(480, 0, 60).end(0);
    let midi = smf(1, PPQ, &[t.take()]);
    let mut riff = b"RIFF".to_vec();
    riff.extend((4 + 10 + 8 + midi.len() as u32).to_le_bytes());
    riff.extend(b"RMID");
    riff.extend(b"LIST\x01\0\0\0x\0"); // an odd-length chunk and its pad byte
    riff.extend(b"data");
    riff.extend((midi.len() as u32).to_le_bytes());
    riff.extend(&midi);
    let (roll, _) = import(&riff, &ImportOptions::default()).unwrap();
    assert_eq!(notes_of(&roll), vec![(0, 60, 4)]);
}

#[test]
fn a_truncated_file_keeps_what_it_holds() {
    let mut t = Track::default();
    t.on(0, 0, 60, 100)
        .off(480, 0, 60)
        .on(0, 0, 64, 100)
        .off(480, 0, 64)
        .end(0);
    let bytes = smf(1, PPQ, &[t.take()]);
    // Cut inside the second note's note-off.
    let cut = &bytes[..bytes.len() - 5];
    let (roll, report) = import(cut, &ImportOptions::default()).unwrap();
    assert_eq!(report.damaged_tracks, 1);
    assert_eq!(report.notes_without_note_off, 1);
    assert_eq!(notes_of(&roll), vec![(0, 60, 4), (4, 64, 1)]);
}

#[test]
fn absurd_delta_times_are_cut_at_the_length_limit() {
    let mut t = Track::default();
    t.on(0, 0, 60, 100).off(480, 0, 60);
    // Each delta is 2^28 - 1 ticks; 20 of them at 1 PPQ are ~5 billion steps.
    for _ in 0..20 {
        t.raw(0x0FFF_FFFF, &[0xFF, 0x01, 0x00]);
    }
    t.on(0, 0, 62, 100).off(1, 0, 62).end(0);
    let (roll, report) = import(&smf(1, 1, &[t.take()]), &ImportOptions::default()).unwrap();
    assert!(report.truncated);
    assert_eq!(report.dropped.past_length_limit, 1);
    assert_eq!(roll.steps(), MAX_STEPS);
    assert_eq!(report.notes_kept, 1);
}

#[test]
fn random_damage_never_panics() {
    let mut t = Track::default();
    t.tempo(0, 400_000).program(0, 0, 5);
    for i in 0..40u8 {
        t.on(u32::from(i % 3) * 60, i % 4, 40 + i, 90)
            .off(120, i % 4, 40 + i);
    }
    let original = smf(1, PPQ, &[t.end(0).take()]);
    let mut rng = Lcg(7);
    for _ in 0..5_000 {
        let mut bytes = original.clone();
        for _ in 0..=rng.below(6) {
            let at = rng.below(bytes.len() as u32) as usize;
            match rng.below(3) {
                0 => bytes[at] = rng.next_u32() as u8,
                1 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at, rng.next_u32() as u8),
            }
        }
        if let Ok((roll, _)) = import(&bytes, &ImportOptions::default()) {
            assert!(roll.steps() <= MAX_STEPS);
            let again = export(&roll, &ExportOptions::default());
            assert_eq!(import(&again, &ImportOptions::default()).unwrap().0, roll);
        }
    }
}
