//! `cadenza bench import|model|audio`: speed figures, printed; never part of the test suite.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde::Serialize;

use super::Outcome;
use crate::files::RollFormat;
use crate::limits;
use crate::midi::{ImportOptions, import};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time MIDI import (parse + quantise) of every MIDI file under DIR.
    Import {
        /// Folder searched recursively for .mid/.midi files.
        dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Time offline rendering, SoundFont loading and, where an output device
    /// opens, play-to-sound latency and underruns under load.
    Audio {
        /// Seconds of live playback while the other core generates.
        #[arg(long, default_value_t = 30.0, value_parser = |s: &str| limits::BENCH_SECONDS.parse(s))]
        seconds: f64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Time 106-step generation and training throughput of a model's network
    /// on the CPU and, where there is one, a real GPU.
    Model {
        /// MIDI/PNG folder for the training figure (default: the shipped demo rolls).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Model file or shipped name to generate with (default: the shipped default).
        #[arg(long)]
        model: Option<String>,
        /// Also measure on a software GPU adapter such as lavapipe (very slow).
        #[arg(long)]
        software_gpu: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: &BenchCommand) -> anyhow::Result<Outcome> {
    match command {
        BenchCommand::Import { dir, json } => {
            let figures = bench_import(dir)?;
            if *json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!(
                    "MIDI import of {} files ({} notes kept, {} failed): \
                     {:.3} / {:.3} / {:.3} ms per file (min / median / max), \
                     {:.0} notes per second",
                    figures.files,
                    figures.notes,
                    figures.failed,
                    figures.ms_per_file_min,
                    figures.ms_per_file_median,
                    figures.ms_per_file_max,
                    figures.notes_per_s
                );
            }
            Ok(Outcome::Success)
        }
        BenchCommand::Audio { seconds, json } => {
            let figures = super::bench_audio::bench_audio(*seconds)?;
            if *json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                print!("{}", figures.to_text());
            }
            Ok(Outcome::Success)
        }
        BenchCommand::Model {
            data,
            model,
            software_gpu,
            json,
        } => {
            let figures =
                super::bench_model::bench_model(data.as_deref(), model.as_deref(), *software_gpu)?;
            if *json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                print!("{}", figures.to_text());
            }
            Ok(Outcome::Success)
        }
    }
}

#[derive(Debug, Serialize)]
struct ImportFigures {
    files: usize,
    failed: usize,
    notes: usize,
    ms_per_file_min: f64,
    ms_per_file_median: f64,
    ms_per_file_max: f64,
    notes_per_s: f64,
}

/// Each file is read into memory first, then imported repeatedly for at least
/// 5 ms (3 runs minimum); its time is the median run.
fn bench_import(dir: &std::path::Path) -> anyhow::Result<ImportFigures> {
    let options = ImportOptions::default();
    let mut per_file = Vec::new();
    let mut notes = 0usize;
    let mut failed = 0usize;
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("cannot walk {}", dir.display()))?;
        if !entry.file_type().is_file()
            || RollFormat::of_path(entry.path()) != Some(RollFormat::Midi)
        {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        let mut runs = Vec::new();
        let started = Instant::now();
        let mut kept = None;
        while runs.len() < 3 || started.elapsed() < Duration::from_millis(5) {
            let run_start = Instant::now();
            let result = import(&bytes, &options);
            runs.push(run_start.elapsed());
            kept = result.ok().map(|(_, report)| report.notes_kept);
            if kept.is_none() {
                break;
            }
        }
        let Some(kept) = kept else {
            failed += 1;
            continue;
        };
        notes += kept;
        runs.sort();
        per_file.push(runs[runs.len() / 2].as_secs_f64() * 1e3);
    }
    if per_file.is_empty() {
        bail!("no importable MIDI files under {}", dir.display());
    }
    let total_ms: f64 = per_file.iter().sum();
    per_file.sort_by(f64::total_cmp);
    Ok(ImportFigures {
        files: per_file.len(),
        failed,
        notes,
        ms_per_file_min: per_file[0],
        ms_per_file_median: per_file[per_file.len() / 2],
        ms_per_file_max: per_file[per_file.len() - 1],
        notes_per_s: notes as f64 / (total_ms / 1e3),
    })
}
