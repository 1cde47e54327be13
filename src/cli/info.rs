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
    /// Present for MIDI input.
    import_report: Option<ImportReport>,
}

impl FileInfo {
    fn new(file: String, loaded: LoadedRoll) -> Self {
        let roll = &loaded.roll;
        let meta = roll.meta();
        let range = roll.pitch_range();
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
            "  duration:   {} at {:.1} BPM in {}",
            minutes_seconds(self.duration_seconds),
            self.tempo_bpm,
            self.time_signature
        );
        let _ = writeln!(
            text,
            "  instrument: program {} ({})",
            self.program, self.program_name
        );
        if let Some(report) = &self.import_report {
            write_report(&mut text, report);
        }
        text
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
        "  notes:      {} kept of {} read; dropped {} out of range (MIDI 21..126), \
         {} on the drum channel, {} past the length limit",
        report.notes_kept,
        report.notes_read,
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
    let meta = args.meta.apply(*loaded.roll.meta());
    loaded.roll.set_meta(meta)?;
    print(
        &FileInfo::new(file.display().to_string(), loaded),
        args.json,
    )?;
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
