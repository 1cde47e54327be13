//! `cadenza info FILE [--json]`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::{MetaArgs, Outcome, ReadArgs};
use crate::assets::default_demo;
use crate::files::{LoadedRoll, RollFormat, load_roll};
use crate::gm::program_name;
use crate::midi::{ImportOptions, ImportReport, import};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A MIDI file (.mid, .midi) or a midi2img PNG (.png); without one, the
    /// shipped demo piece.
    pub file: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub meta: MetaArgs,
}

/// What `info` prints, also as JSON.
#[derive(Debug, Serialize)]
struct FileInfo {
    file: String,
    format: RollFormat,
    steps: usize,
    steps_per_quarter: u8,
    notes: usize,
    /// MIDI note numbers of the lowest and highest sounding pitch.
    pitch_range: Option<[u8; 2]>,
    pitch_range_names: Option<[String; 2]>,
    duration_seconds: f64,
    tempo_bpm: f64,
    /// "3/4"; 4/4 where the file gives none.
    time_signature: String,
    program: u8,
    program_name: String,
    /// The parts as played: each a track's notes on one channel.
    parts: Vec<PartInfo>,
    /// Every time signature, the first at step 0.
    time_signatures: Vec<SignatureInfo>,
    /// Every tempo, the first at step 0.
    tempo_map: Vec<TempoInfo>,
    /// Present for MIDI input.
    import_report: Option<ImportReport>,
}

#[derive(Debug, Serialize)]
struct PartInfo {
    name: String,
    /// 1..=16, as musicians count; 10 is drums.
    channel: u8,
    drums: bool,
    notes: usize,
    /// Programs its notes use, in order of first use.
    programs: Vec<u8>,
    program_names: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SignatureInfo {
    step: usize,
    seconds: f64,
    signature: String,
}

#[derive(Debug, Serialize)]
struct TempoInfo {
    step: usize,
    seconds: f64,
    bpm: f64,
}

/// Lines of a list `info` prints before it says how many more there are.
const LISTED: usize = 12;

impl FileInfo {
    fn new(file: String, loaded: LoadedRoll) -> Self {
        let roll = &loaded.roll;
        let meta = roll.meta();
        let range = roll.pitch_range();
        let performance = roll.performance(100);
        let map = roll.tempo_map();
        let parts = performance
            .parts
            .iter()
            .enumerate()
            .map(|(index, part)| {
                let mut programs: Vec<u8> = Vec::new();
                let mut notes = 0;
                for note in performance.part_notes(index as u16) {
                    notes += 1;
                    if !programs.contains(&note.program) {
                        programs.push(note.program);
                    }
                }
                PartInfo {
                    name: part.name.clone(),
                    channel: part.channel + 1,
                    drums: part.is_drums(),
                    notes,
                    program_names: programs
                        .iter()
                        .map(|&p| drum_or_program_name(part.is_drums(), p))
                        .collect(),
                    programs,
                }
            })
            .collect();
        let time_signatures = roll
            .metre_stretches()
            .iter()
            .map(|stretch| SignatureInfo {
                step: stretch.start,
                seconds: map.seconds_at(stretch.start as f64),
                signature: stretch.signature.to_string(),
            })
            .collect();
        let tempo_map = std::iter::once((0, meta.tempo))
            .chain(roll.arrangement().tempo_changes().iter().copied())
            .map(|(step, tempo)| TempoInfo {
                step,
                seconds: map.seconds_at(step as f64),
                bpm: tempo.bpm(),
            })
            .collect();
        Self {
            file,
            format: loaded.format,
            steps: roll.steps(),
            steps_per_quarter: meta.steps_per_quarter,
            notes: roll.note_count(),
            pitch_range: range.map(|(low, high)| [low.midi(), high.midi()]),
            pitch_range_names: range.map(|(low, high)| [low.name(), high.name()]),
            duration_seconds: roll.duration_seconds(),
            tempo_bpm: meta.tempo.bpm(),
            time_signature: meta.time_signature.to_string(),
            program: meta.program,
            program_name: program_name(meta.program),
            parts,
            time_signatures,
            tempo_map,
            import_report: loaded.report,
        }
    }

    fn to_text(&self) -> String {
        let mut text = String::new();
        let format = match self.format {
            RollFormat::Midi => "MIDI",
            RollFormat::Png => "midi2img PNG",
        };
        let _ = writeln!(text, "{} ({format})", self.file);
        let range = self
            .pitch_range_names
            .as_ref()
            .map_or_else(|| "silent".to_owned(), |[lo, hi]| format!("{lo}..{hi}"));
        let _ = writeln!(
            text,
            "  roll:       {} steps at {} per quarter, {} notes, pitches {range}",
            self.steps, self.steps_per_quarter, self.notes
        );
        let _ = writeln!(
            text,
            "  duration:   {} at {:.1} BPM in {} at the start",
            minutes_seconds(self.duration_seconds),
            self.tempo_bpm,
            self.time_signature
        );
        let _ = writeln!(
            text,
            "  instrument: program {} ({})",
            self.program, self.program_name
        );
        self.write_arrangement(&mut text);
        if let Some(report) = &self.import_report {
            write_report(&mut text, report);
        }
        text
    }

    fn write_arrangement(&self, text: &mut String) {
        let _ = writeln!(text, "  parts:      {}", self.parts.len());
        for (index, part) in self.parts.iter().enumerate() {
            let programs: Vec<String> = part
                .programs
                .iter()
                .zip(&part.program_names)
                .map(|(program, name)| format!("{program} ({name})"))
                .collect();
            let what = if part.drums { "drum kit" } else { "program" };
            let _ = writeln!(
                text,
                "    {:>2}. {} (channel {}): {} notes, {what} {}",
                index + 1,
                part.name,
                part.channel,
                part.notes,
                or_none(&programs.join(", "))
            );
        }
        let signatures: Vec<String> = self
            .time_signatures
            .iter()
            .map(|s| format!("{} at {}", s.signature, minutes_seconds(s.seconds)))
            .collect();
        let _ = writeln!(text, "  metre:      {}", listed(&signatures));
        let tempos: Vec<String> = self
            .tempo_map
            .iter()
            .map(|t| format!("{:.1} BPM at {}", t.bpm, minutes_seconds(t.seconds)))
            .collect();
        let _ = writeln!(text, "  tempo map:  {}", listed(&tempos));
    }
}

/// The first [`LISTED`] items joined, and how many more there are.
fn listed(items: &[String]) -> String {
    let shown = items[..items.len().min(LISTED)].join(", ");
    match items.len().saturating_sub(LISTED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// A program's General MIDI name, or its drum kit's on channel 10.
fn drum_or_program_name(drums: bool, program: u8) -> String {
    if drums {
        // The kits GS and GM2 put on channel 10's program numbers.
        match program {
            0 => "Standard",
            8 => "Room",
            16 => "Power",
            24 => "Electronic",
            25 => "TR-808",
            32 => "Jazz",
            40 => "Brush",
            48 => "Orchestra",
            56 => "SFX",
            _ => "kit",
        }
        .to_owned()
    } else {
        program_name(program)
    }
}

fn write_report(text: &mut String, report: &ImportReport) {
    let _ = writeln!(
        text,
        "  file:       SMF format {}, {}, {} tracks{}",
        report.format,
        report.timing,
        report.tracks,
        if report.damaged_tracks > 0 {
            format!(" ({} cut short or damaged)", report.damaged_tracks)
        } else {
            String::new()
        }
    );
    let dropped = report.dropped;
    let _ = writeln!(
        text,
        "  notes:      {} read, {} kept to play and write, {} in the roll; \
         the roll leaves out {} out of its range (MIDI 21..126) and {} drums, \
         {} are past the length limit",
        report.notes_read,
        report.played_notes,
        report.notes_kept,
        dropped.out_of_range,
        dropped.drums,
        dropped.past_length_limit
    );
    if report.notes_without_note_off > 0 {
        let _ = writeln!(
            text,
            "  note:       {} notes had no note-off and end at their track's last event",
            report.notes_without_note_off
        );
    }
    let channels: Vec<String> = report.channels.iter().map(u8::to_string).collect();
    let _ = writeln!(text, "  channels:   {}", or_none(&channels.join(", ")));
    let programs: Vec<String> = report
        .programs
        .iter()
        .map(|p| {
            format!(
                "ch{} {} ({})",
                p.channel,
                p.program,
                program_name(p.program)
            )
        })
        .collect();
    let _ = writeln!(text, "  programs:   {}", or_none(&programs.join(", ")));
    let _ = writeln!(
        text,
        "  tempo:      {:.1} BPM at the start, {} tempo events, {} time-signature events; \
         file length {}",
        report.initial_bpm,
        report.tempo_changes,
        report.time_signatures,
        minutes_seconds(report.length_seconds)
    );
    if report.truncated {
        let _ = writeln!(
            text,
            "  warning:    the music is longer than {} steps and was cut there",
            crate::roll::MAX_STEPS
        );
    }
}

fn or_none(text: &str) -> &str {
    if text.is_empty() { "none" } else { text }
}

fn minutes_seconds(seconds: f64) -> String {
    let minutes = (seconds / 60.0).floor();
    format!("{}:{:04.1}", minutes as u64, seconds - minutes * 60.0)
}

fn print(info: &FileInfo, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(info)?);
    } else {
        print!("{}", info.to_text());
    }
    Ok(())
}

pub fn run(args: &InfoArgs) -> anyhow::Result<Outcome> {
    let Some(file) = &args.file else {
        return run_default();
    };
    let options = args.read.load_options(&args.meta);
    let mut loaded = load_roll(file, &options)?;
    args.meta.apply_to(&mut loaded.roll);
    print(
        &FileInfo::new(file.display().to_string(), loaded),
        args.json,
    )?;
    Ok(Outcome::Success)
}

/// `cadenza FILE` in a build without the app: what `info` says of FILE.
#[cfg(not(feature = "gui"))]
pub fn run_file(file: &std::path::Path) -> anyhow::Result<Outcome> {
    let loaded = load_roll(file, &crate::files::LoadOptions::default())?;
    print(&FileInfo::new(file.display().to_string(), loaded), false)?;
    Ok(Outcome::Success)
}

/// `cadenza info` without a file (and `cadenza` without the `gui` feature):
/// describe the bundled demo piece and point at the subcommands.
pub fn run_default() -> anyhow::Result<Outcome> {
    let demo = default_demo();
    let (roll, report) = import(demo.midi, &ImportOptions::default())
        .with_context(|| format!("bundled demo {}", demo.file_name))?;
    let loaded = LoadedRoll {
        roll,
        format: RollFormat::Midi,
        report: Some(report),
    };
    print(
        &FileInfo::new(format!("demo: {}", demo.file_name), loaded),
        false,
    )?;
    println!("\nRun `cadenza --help` for the commands.");
    Ok(Outcome::Success)
}
