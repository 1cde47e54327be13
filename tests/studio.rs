//! What the studio put in a file survives Cadenza: real files with tempo maps,
//! 3/4 and 2/4, metre changes and band arrangements with drums
//! (`tests/data/studio`, see its README) go MIDI -> roll -> MIDI keeping every
//! note at its time in seconds, its velocity, its program and its part, and
//! play for as long as the music.

use std::path::PathBuf;

use cadenza::audio::player::Song;
use cadenza::midi::{ExportOptions, ImportOptions, MidiNotes, export, import, read_notes};

use crate::corpus::reference_mismatches;
use crate::helpers::{cadenza, data_dir, midi_files_under, path, text};

fn studio() -> PathBuf {
    data_dir().join("studio")
}

fn studio_files() -> Vec<PathBuf> {
    midi_files_under(&studio())
}

#[test]
fn studio_files_agree_with_their_reference_reading() {
    let (listed, notes, mismatches) = reference_mismatches(&studio());
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(listed, studio_files());
    assert_eq!(notes, 16_191);
}

/// A note as heard: (channel, key) and start seconds, velocity, program.
#[derive(Debug, Clone, Copy)]
struct Heard {
    channel: u8,
    key: u8,
    start: f64,
    velocity: u8,
    program: u8,
}

fn heard(file: &MidiNotes) -> Vec<Heard> {
    file.notes
        .iter()
        .zip(file.note_seconds())
        .map(|(note, (start, _))| Heard {
            channel: note.channel,
            key: note.pitch,
            start,
            velocity: note.velocity,
            program: file.program_at(note.channel, note.start_tick),
        })
        .collect()
}

/// The end of the music in seconds: the last note-off or event.
fn end_seconds(file: &MidiNotes) -> f64 {
    file.seconds_at(file.last_tick())
}

/// How each original note fares in `after`: matched by channel and key to
/// the nearest unused note within `tolerance` seconds.
struct Fidelity {
    notes: usize,
    at_time: usize,
    velocity_error: f64,
    same_program: usize,
    drums: usize,
    drums_at_time: usize,
}

fn fidelity(before: &[Heard], after: &[Heard], tolerance: f64) -> Fidelity {
    let mut used = vec![false; after.len()];
    let mut by_key: std::collections::HashMap<(u8, u8), Vec<usize>> = Default::default();
    for (index, note) in after.iter().enumerate() {
        by_key
            .entry((note.channel, note.key))
            .or_default()
            .push(index);
    }
    let mut result = Fidelity {
        notes: before.len(),
        at_time: 0,
        velocity_error: 0.0,
        same_program: 0,
        drums: 0,
        drums_at_time: 0,
    };
    for note in before {
        let drum = note.channel == 9;
        result.drums += usize::from(drum);
        let candidates = by_key.get(&(note.channel, note.key)).into_iter().flatten();
        let best = candidates
            .filter(|&&i| !used[i] && (after[i].start - note.start).abs() <= tolerance)
            .min_by(|&&a, &&b| {
                let distance = |i: usize| (after[i].start - note.start).abs();
                distance(a).total_cmp(&distance(b))
            });
        if let Some(&index) = best {
            used[index] = true;
            let kept = after[index];
            result.at_time += 1;
            result.drums_at_time += usize::from(drum);
            result.velocity_error += f64::from(kept.velocity.abs_diff(note.velocity));
            result.same_program += usize::from(kept.program == note.program);
        }
    }
    result.velocity_error /= result.at_time.max(1) as f64;
    result
}

#[test]
fn midi_comes_back_with_its_timing_metre_velocities_programs_and_drums() {
    let mut report = Vec::new();
    for file in studio_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&file).unwrap();
        let original = read_notes(&bytes).unwrap();
        let (roll, _) = import(&bytes, &ImportOptions::default()).unwrap();
        let written = export(&roll, &ExportOptions::default());
        let back = read_notes(&written).unwrap();

        let fidelity = fidelity(&heard(&original), &heard(&back), 0.010);
        let at_time = fidelity.at_time as f64 / fidelity.notes as f64;
        let programs = fidelity.same_program as f64 / fidelity.at_time as f64;
        let (end_before, end_after) = (end_seconds(&original), end_seconds(&back));
        report.push(format!(
            "{name}: {:.2}% of {} notes within 10 ms, velocity error {:.2}, programs {:.2}%, \
             drums {}/{}, end {end_before:.2} s -> {end_after:.2} s",
            at_time * 100.0,
            fidelity.notes,
            fidelity.velocity_error,
            programs * 100.0,
            fidelity.drums_at_time,
            fidelity.drums
        ));
        assert_eq!(back.notes.len(), original.notes.len(), "{name}");
        assert!(at_time >= 0.99, "{}", report.join("\n"));
        assert!(fidelity.velocity_error <= 2.0, "{}", report.join("\n"));
        assert!(programs >= 0.99, "{}", report.join("\n"));
        assert_eq!(
            fidelity.drums_at_time,
            fidelity.drums,
            "{}",
            report.join("\n")
        );
        assert!(
            (end_after - end_before).abs() <= 0.01 * end_before,
            "{}",
            report.join("\n")
        );

        // Every time signature, at its time in seconds.
        let signatures = |file: &MidiNotes| -> Vec<(i64, String)> {
            let mut list: Vec<(i64, String)> = file
                .time_signatures
                .iter()
                .map(|&(tick, s)| {
                    (
                        (file.seconds_at(tick) * 100.0).round() as i64,
                        s.to_string(),
                    )
                })
                .collect();
            list.dedup();
            list
        };
        assert_eq!(signatures(&back), signatures(&original), "{name}");
        // The roll plays for as long as the music.
        let song = Song::from_roll(&roll, 100);
        assert!(
            (song.duration_seconds() - end_before).abs() <= 0.01 * end_before,
            "{name}: the song lasts {:.2} s, the music {end_before:.2} s",
            song.duration_seconds()
        );
    }
    println!("{}", report.join("\n"));
}

#[test]
fn info_lists_parts_programs_metre_and_the_tempo_map() {
    let band = studio().join("redfarn_be_sharp_boogie_band.mid");
    let output = cadenza(&["info", path(&band), "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let parts = info["parts"].as_array().unwrap();
    let drums: Vec<_> = parts.iter().filter(|p| p["drums"] == true).collect();
    assert_eq!(drums.len(), 1);
    assert_eq!(drums[0]["channel"], 10);
    assert_eq!(drums[0]["notes"], 1344);
    let programs: Vec<u64> = parts
        .iter()
        .filter(|p| p["drums"] == false)
        .flat_map(|p| {
            p["programs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
        })
        .collect();
    assert!(programs.contains(&25) && programs.contains(&33) && programs.contains(&1));
    // The written ritardando: several tempos, slowing down at the end.
    let tempos = info["tempo_map"].as_array().unwrap();
    assert!(tempos.len() > 5, "{tempos:?}");
    let last = tempos.last().unwrap()["bpm"].as_f64().unwrap();
    assert!(last < tempos[0]["bpm"].as_f64().unwrap());

    let waltz = studio().join("debussy_snow_is_dancing_tsig_changes.mid");
    let output = cadenza(&["info", path(&waltz)]);
    let printed = text(&output.stdout);
    assert!(
        printed.contains("metre:      4/4 at 0:00.0, 2/4 at 1:32.6"),
        "{printed}"
    );
}

#[test]
fn convert_keeps_the_parts_unless_asked_to_merge() {
    let dir = tempfile::tempdir().unwrap();
    let band = studio().join("redfarn_boogi_marabi_3-4_band.mid");
    let (parts, merged) = (dir.path().join("parts.mid"), dir.path().join("merged.mid"));
    for (out, extra) in [(&parts, None), (&merged, Some("--merged"))] {
        let mut args = vec!["convert", path(&band), path(out)];
        args.extend(extra);
        let output = cadenza(&args);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let parts = read_notes(&std::fs::read(&parts).unwrap()).unwrap();
    let merged = read_notes(&std::fs::read(&merged).unwrap()).unwrap();
    let channels = |file: &MidiNotes| {
        let mut list: Vec<u8> = file.notes.iter().map(|n| n.channel).collect();
        list.sort_unstable();
        list.dedup();
        list
    };
    assert!(channels(&parts).contains(&9));
    assert!(channels(&parts).len() >= 4);
    assert_eq!(channels(&merged), vec![0]);
    assert_eq!(merged.tracks, 2);
    assert!(merged.notes.iter().all(|n| n.velocity == 100));
    assert_eq!(
        merged.time_signatures.first().map(|s| s.1.to_string()),
        Some("3/4".to_owned())
    );
}
