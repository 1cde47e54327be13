//! The headless command line: `cadenza info`, `convert`, `model`,
//! `import-keras`, `train`, `generate`, `render`, `play` (with the `gui`
//! feature), `devices`, `bench`.
//!
//! Exit codes: 0 success, 1 a batch where some files failed, 2 a usage or fatal
//! error. Errors go to stderr, one line each, naming the file.

mod audio;
mod bench;
mod bench_audio;
mod bench_model;
mod convert;
mod eval;
mod generate;
mod info;
mod model;
mod train;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::files::LoadOptions;
use crate::midi::{ExportOptions, ImportOptions};
use crate::roll::{DEFAULT_STEPS_PER_QUARTER, PianoRoll, RollMeta, Tempo};

/// Cadenza: piano rolls, a neural continuation model and a SoundFont synth.
#[derive(Debug, Parser)]
#[command(
    name = "cadenza",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// A MIDI file or roll PNG to open the composer on (default: the demo).
    #[arg(value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a MIDI or PNG file holds: steps, notes, pitch range, tempo, programs.
    Info(info::InfoArgs),
    /// Convert MIDI <-> midi2img PNG (or MIDI -> normalised MIDI); files or whole folders.
    Convert(convert::ConvertArgs),
    /// Inspect the network: a Keras-style summary, or what a model file holds.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Turn the article's network's Keras weights (.npz) into a Cadenza model file.
    ImportKeras(model::ImportKerasArgs),
    /// Train a network (the composer, the roll LSTM or the article's) on a folder of MIDI/PNG files.
    Train(train::TrainArgs),
    /// Continue a seed window with a model and write MIDI (and PNG).
    Generate(generate::GenerateArgs),
    /// Score a model on held-out music: next-step prediction and its own continuations.
    Eval(eval::EvalArgs),
    /// Render a MIDI file or roll PNG to a WAV file with a SoundFont.
    Render(audio::RenderArgs),
    /// Play a MIDI file or roll PNG on the default audio output.
    #[cfg(feature = "gui")]
    Play(audio::PlayArgs),
    /// List the shipped SoundFont and the SF2 files in the usual system folders.
    Soundfonts,
    /// List the GPU adapters and say which one `--backend auto` would use.
    Devices,
    /// Measure speed; prints figures (never run inside the test suite).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// How the program ended, mapped to the documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A batch finished but some files failed.
    PartialFailure,
}

/// Exit code for a usage or fatal error (clap uses it for usage errors too).
pub const EXIT_FATAL: u8 = 2;

/// Runs a parsed command line and turns the result into an exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Some(Command::Info(args)) => info::run(&args),
        Some(Command::Convert(args)) => convert::run(&args),
        Some(Command::Model(command)) => model::run(&command),
        Some(Command::ImportKeras(args)) => model::import_keras(&args),
        Some(Command::Train(args)) => train::run(&args),
        Some(Command::Generate(args)) => generate::run(&args),
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::Render(args)) => audio::render(&args),
        #[cfg(feature = "gui")]
        Some(Command::Play(args)) => audio::play(&args),
        Some(Command::Soundfonts) => audio::soundfonts(),
        Some(Command::Devices) => model::devices(),
        Some(Command::Bench(command)) => bench::run(&command),
        None => open_app(cli.file),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::PartialFailure) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// A command line clap could not take: help and version as clap prints
/// them; a mistake as one line on stderr and exit code 2, as every other
/// error here.
pub fn refuse(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_FATAL));
    }
    // clap's message is its first paragraph; usage and tips follow.
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    eprintln!(
        "error: {} (see --help)",
        message.trim_start_matches("error: ")
    );
    ExitCode::from(EXIT_FATAL)
}

/// No subcommand: the desktop app, or a description of the demo piece in a
/// build without it.
#[cfg(feature = "gui")]
fn open_app(file: Option<std::path::PathBuf>) -> anyhow::Result<Outcome> {
    if let Some(file) = &file
        && !file.is_file()
    {
        anyhow::bail!("cannot open {}: no such file", file.display());
    }
    crate::app::run(file)?;
    Ok(Outcome::Success)
}

/// Without the app: what `cadenza info` says of FILE, or of the demo.
#[cfg(not(feature = "gui"))]
fn open_app(file: Option<std::path::PathBuf>) -> anyhow::Result<Outcome> {
    match file {
        Some(file) => info::run_file(&file),
        None => info::run_default(),
    }
}

/// Options for reading rolls, shared by the subcommands that read files.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// Grid resolution in steps per quarter note (1..=24; 4 = sixteenths)
    /// [default: the grid the model was trained on where a model is used,
    /// else 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=24))]
    pub steps_per_quarter: Option<u8>,
    /// Keep notes on MIDI channel 10 (General MIDI drums), left out by default.
    #[arg(long)]
    pub include_drums: bool,
}

/// Tempo and instrument: what a PNG lacks, or an override for MIDI.
#[derive(Debug, Clone, Default, Args)]
pub struct MetaArgs {
    /// Tempo in quarter notes per minute at the start (default: the file's,
    /// 120 for PNG); a file's tempo changes keep their ratio to it.
    #[arg(long, value_name = "BPM", value_parser = parse_bpm)]
    pub tempo: Option<Tempo>,
    /// General MIDI program 0..=127 of the main part, the one generated notes
    /// go to (default: the file's, 0 = piano for PNG).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=127))]
    pub program: Option<u8>,
}

impl ReadArgs {
    fn load_options(&self, meta: &MetaArgs) -> LoadOptions {
        self.load_options_on(meta, None)
    }

    /// [`load_options`](Self::load_options) on the grid given, else on
    /// `model_grid` (the grid a model learnt on), else on sixteenths.
    fn load_options_on(&self, meta: &MetaArgs, model_grid: Option<u8>) -> LoadOptions {
        let steps_per_quarter = self
            .steps_per_quarter
            .or(model_grid)
            .unwrap_or(DEFAULT_STEPS_PER_QUARTER);
        LoadOptions {
            midi: ImportOptions {
                steps_per_quarter,
                include_drums: self.include_drums,
            },
            png_meta: RollMeta {
                steps_per_quarter,
                tempo: meta.tempo.unwrap_or_default(),
                program: meta.program.unwrap_or(0),
                ..RollMeta::default()
            },
        }
    }
}

impl MetaArgs {
    /// Applies the overrides the user gave to a roll: the tempo map scaled to
    /// start at `--tempo`, the main part played by `--program`.
    fn apply_to(&self, roll: &mut PianoRoll) {
        if let Some(tempo) = self.tempo {
            roll.set_opening_tempo(tempo);
        }
        if let Some(program) = self.program {
            roll.set_main_program(program);
        }
    }
}

fn parse_bpm(text: &str) -> Result<Tempo, String> {
    let bpm = crate::limits::TEMPO_BPM.parse(text)?;
    Tempo::from_bpm(bpm).ok_or_else(|| format!("{bpm} BPM is not a tempo"))
}

fn export_options(velocity: u8, merged: bool) -> ExportOptions {
    ExportOptions { velocity, merged }
}
