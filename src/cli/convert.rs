//! `cadenza convert IN OUT`: one file, or every MIDI/PNG file under a folder.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use indicatif::{ParallelProgressIterator as _, ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::{MetaArgs, Outcome, ReadArgs, export_options};
use crate::files::{
    FoundFiles, LoadOptions, RollFormat, SaveOptions, find_roll_files, load_roll, save_roll,
};
use crate::limits;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A MIDI or PNG file, or a folder to convert recursively.
    pub input: PathBuf,
    /// The output file (format from its extension), or a folder.
    pub output: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub meta: MetaArgs,
    /// Split PNG output into images of N columns, `<name>_<k>.png` (N = 100 if omitted).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "100",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk: Option<u32>,
    /// Note-on velocity (1..=127) of MIDI output for notes that have none of
    /// their own (from a PNG, or everything with --merged).
    #[arg(long, value_name = "V", default_value_t = 100,
          value_parser = clap::value_parser!(u8).range(1..=127))]
    pub velocity: u8,
    /// Write MIDI output as one merged piano-roll track on channel 1 (the
    /// roll's cells at one velocity and program) instead of the file's parts,
    /// programs, velocities and drums.
    #[arg(long)]
    pub merged: bool,
    /// Format to write when OUT is a folder (default: PNG for MIDI input, MIDI for PNG input).
    #[arg(long, value_enum)]
    pub to: Option<Target>,
    /// Worker threads for folders (default: one per core).
    #[arg(long, value_name = "N", value_parser = |s: &str| limits::JOBS.parse(s))]
    pub jobs: Option<usize>,
}

/// An output format chosen on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Mid,
    Png,
}

impl From<Target> for RollFormat {
    fn from(target: Target) -> Self {
        match target {
            Target::Mid => RollFormat::Midi,
            Target::Png => RollFormat::Png,
        }
    }
}

struct Plan<'a> {
    load: LoadOptions,
    save: SaveOptions,
    args: &'a ConvertArgs,
}

impl Plan<'_> {
    /// The format to write for an input of `format` when OUT names no extension.
    fn target_for(&self, format: RollFormat) -> RollFormat {
        self.args.to.map_or(
            match format {
                RollFormat::Midi => RollFormat::Png,
                RollFormat::Png => RollFormat::Midi,
            },
            RollFormat::from,
        )
    }

    fn convert(&self, input: &Path, output: &Path) -> anyhow::Result<Vec<PathBuf>> {
        let mut loaded = load_roll(input, &self.load)?;
        self.args.meta.apply_to(&mut loaded.roll);
        Ok(save_roll(&loaded.roll, output, &self.save)?)
    }
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<Outcome> {
    let plan = Plan {
        load: args.read.load_options(&args.meta),
        save: SaveOptions {
            midi: export_options(args.velocity, args.merged),
            png_chunk_columns: args.chunk.map(|n| n as usize),
        },
        args,
    };
    if args.input.is_dir() {
        if args.output.is_file() {
            bail!(
                "{} is a folder, so the output must be a folder too, but {} is a file",
                args.input.display(),
                args.output.display()
            );
        }
        convert_folder(&plan)
    } else {
        convert_file(&plan)
    }
}

fn convert_file(plan: &Plan<'_>) -> anyhow::Result<Outcome> {
    let input = &plan.args.input;
    let format = RollFormat::of_path(input).with_context(|| {
        format!(
            "{}: unknown input type; use .mid/.midi or .png",
            input.display()
        )
    })?;
    let output = if plan.args.output.is_dir() {
        let stem = input.file_stem().unwrap_or(input.as_os_str());
        plan.args
            .output
            .join(stem)
            .with_extension(plan.target_for(format).extension())
    } else {
        plan.args.output.clone()
    };
    let written = plan.convert(input, &output)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(Outcome::Success)
}

fn convert_folder(plan: &Plan<'_>) -> anyhow::Result<Outcome> {
    let (input, output) = (&plan.args.input, &plan.args.output);
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create the folder {}", output.display()))?;
    let output_inside_input = output
        .canonicalize()
        .ok()
        .zip(input.canonicalize().ok())
        .filter(|(out, inp)| out.starts_with(inp) && out != inp)
        .map(|(out, _)| out);

    // Never read back what this run writes when OUT lies inside IN.
    let in_output = |path: &Path| {
        output_inside_input
            .as_ref()
            .is_some_and(|out| path.canonicalize().is_ok_and(|path| path.starts_with(out)))
    };
    let FoundFiles {
        rolls: sources,
        unreadable: mut failures,
        ignored,
    } = find_roll_files(input, &in_output);

    let bar = ProgressBar::new(sources.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files, {elapsed} elapsed, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let threads = plan.args.jobs.unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;
    let results: Vec<_> = pool.install(|| {
        sources
            .par_iter()
            .progress_with(bar.clone())
            .map(|(source, format)| {
                let relative = source.strip_prefix(input).unwrap_or(source);
                let target = output
                    .join(relative)
                    .with_extension(plan.target_for(*format).extension());
                let result = target
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .with_context(|| format!("cannot create the folder for {}", target.display()))
                    .and_then(|()| plan.convert(source, &target));
                (source, result)
            })
            .collect()
    });
    bar.finish_and_clear();

    let mut converted = 0usize;
    let mut written = 0usize;
    for (source, result) in results {
        match result {
            Ok(paths) => {
                converted += 1;
                written += paths.len();
            }
            Err(error) => failures.push((source.clone(), format!("{error:#}"))),
        }
    }
    failures.sort();
    for (path, reason) in &failures {
        // Most errors already start with the path; add it only where missing.
        let shown = path.display().to_string();
        if reason.starts_with(&shown) {
            eprintln!("error: {reason}");
        } else {
            eprintln!("error: {shown}: {reason}");
        }
    }
    println!(
        "converted {converted} of {} files into {} ({written} files written); {} skipped{}",
        sources.len(),
        output.display(),
        failures.len(),
        if ignored > 0 {
            format!("; {ignored} other files ignored (not .mid/.midi/.png)")
        } else {
            String::new()
        }
    );
    Ok(if failures.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    })
}
