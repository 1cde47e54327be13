//! `cadenza generate`: continue a seed window with a model, or fill a passage
//! from both sides; in a scale, a range, a density, around locked notes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;

use super::{MetaArgs, Outcome, ReadArgs, export_options};
use crate::assets::{default_demo, open_model};
use crate::checkpoint::CheckpointHeader;
use crate::device::SelectedDevice;
use crate::device::{self, BackendChoice};
use crate::files::{SaveOptions, load_roll, save_roll};
use crate::generate::{
    self, Constraints, Continuation, Fill, GenerateOptions, Placement, Rule, RuleKind,
    RuleSettings, Runner, compose, seed_context,
};
use crate::limits;
use crate::midi::import;
use crate::model::{Architecture, Network, WINDOW_STEPS};
use crate::music::{PitchRange, Scale};
use crate::roll::{PianoRoll, RollMeta};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A model file or a shipped model's name (default: the shipped default).
    #[arg(long)]
    pub model: Option<String>,
    /// A MIDI or PNG file to take the seed window from (default: a shipped demo).
    #[arg(long)]
    pub seed_file: Option<PathBuf>,
    /// First step of the 9-step seed window.
    #[arg(long, default_value_t = 0)]
    pub seed_start: usize,
    /// Steps to generate.
    #[arg(long, default_value_t = 106, value_parser = |s: &str| limits::GENERATE_STEPS.parse(s))]
    pub steps: usize,
    /// How probabilities become notes [default: the model's own: sample for
    /// roll-lstm networks, boost for the article's].
    #[arg(long, value_enum)]
    pub rule: Option<RuleKind>,
    #[command(flatten)]
    pub rule_params: RuleParams,
    /// Rewrite steps A..B (from A, up to but not including B) of the seed
    /// file from the music on both sides, keeping every other cell; --out
    /// and --png then hold the whole roll. Needs the composer.
    #[arg(long, value_name = "A..B", value_parser = parse_steps, conflicts_with_all = ["seed_start", "steps", "include_seed"])]
    pub fill: Option<std::ops::Range<usize>>,
    #[command(flatten)]
    pub bounds: BoundArgs,
    /// Continuations to generate at once; more than one writes OUT-1.mid, OUT-2.mid, ...
    /// (with the sample rule: the others give the same roll each time).
    #[arg(long, default_value_t = 1, value_parser = |s: &str| limits::VARIATIONS.parse(s))]
    pub variations: usize,
    /// The MIDI file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the result as a midi2img PNG.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Put the seed window before the generated steps in the outputs.
    #[arg(long)]
    pub include_seed: bool,
    /// Note-on velocity of the written MIDI.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=127))]
    pub velocity: u8,
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// What generated notes must obey, as flags.
#[derive(Debug, Clone, Args)]
pub struct BoundArgs {
    /// Only notes of this scale, TONIC:MODE (e.g. C:major, F#:minor,
    /// Bb:dorian; modes: major, minor, harmonic-minor, melodic-minor, dorian,
    /// phrygian, lydian, mixolydian, locrian, major-pentatonic,
    /// minor-pentatonic, blues, whole-tone, chromatic).
    #[arg(long, value_name = "TONIC:MODE")]
    pub scale: Option<Scale>,
    /// Only notes in LOW..HIGH, both included, as MIDI numbers or names
    /// (e.g. C3..C6, 48..84).
    #[arg(long, value_name = "LOW..HIGH")]
    pub pitch_range: Option<PitchRange>,
    /// Steer towards this many sounding notes per step (steers, not forces:
    /// each step's notes still come from the model).
    #[arg(long, value_name = "N", value_parser = |s: &str| limits::DENSITY.parse(s))]
    pub density: Option<f32>,
    /// A MIDI or PNG file whose notes must sound where they sound there (on
    /// the seed file's grid: step k of this file is step k of the piece).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

impl BoundArgs {
    /// The constraints these flags ask for.
    pub fn constraints(&self, options: &crate::files::LoadOptions) -> anyhow::Result<Constraints> {
        let mut constraints = Constraints {
            density: self.density,
            ..Constraints::default()
        };
        let scale = self.scale.map(|scale| scale.row_mask());
        let range = self.pitch_range.map(|range| range.row_mask());
        constraints.allowed = match (scale, range) {
            (Some(a), Some(b)) => Some(a & b),
            (a, b) => a.or(b),
        };
        if let Some(path) = &self.lock {
            let locked = load_roll(path, options).with_context(|| {
                format!("cannot read the notes to lock from {}", path.display())
            })?;
            constraints.lock_notes_of(&locked.roll);
        }
        Ok(constraints)
    }
}

/// `A..B` as a range of steps.
fn parse_steps(text: &str) -> Result<std::ops::Range<usize>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a range of steps such as 32..64"))?;
    let number = |part: &str| {
        limits::ROLL_STEPS
            .parse(part.trim())
            .or_else(|e| match part.trim() {
                "0" => Ok(0),
                _ => Err(e),
            })
    };
    let (start, end) = (number(start)?, number(end)?);
    if start >= end {
        return Err(format!("the range {start}..{end} holds no step"));
    }
    Ok(start..end)
}

/// The rules' parameters, as flags.
#[derive(Debug, Clone, Args)]
pub struct RuleParams {
    #[arg(long, default_value_t = 0.65, value_parser = |s: &str| limits::VANISH_PROOF.parse(s))]
    pub vanish_proof: f64,
    #[arg(long, default_value_t = 1.001, value_parser = |s: &str| limits::VANISH_INC.parse(s))]
    pub vanish_inc: f64,
    /// For --rule threshold [default: the threshold with the best validation
    /// F1 recorded in the model file, else 0.5].
    #[arg(long, value_parser = |s: &str| limits::THRESHOLD.parse(s))]
    pub threshold: Option<f32>,
    #[arg(long, default_value_t = 1.0, value_parser = |s: &str| limits::TEMPERATURE.parse(s))]
    pub temperature: f32,
    #[arg(long, default_value_t = 0)]
    pub rng_seed: u64,
}

impl RuleParams {
    /// Rule `kind` with these parameters, or the default rule of the model
    /// `header` describes when no kind is given.
    pub fn rule(&self, kind: Option<RuleKind>, header: &CheckpointHeader) -> Rule {
        RuleSettings {
            kind: kind.unwrap_or(RuleKind::default_for(header.network.architecture())),
            vanish_proof: self.vanish_proof,
            vanish_inc: self.vanish_inc,
            threshold: self
                .threshold
                .or_else(|| header.tuned_threshold())
                .unwrap_or(0.5),
            temperature: self.temperature,
            rng_seed: self.rng_seed,
        }
        .rule()
    }
}

/// `out.mid` for one variation, `out-<k>.mid` (1-based) for several.
fn numbered(path: &Path, variation: usize, variations: usize) -> PathBuf {
    if variations == 1 {
        return path.to_owned();
    }
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{}.{}", variation + 1, ext.to_string_lossy()),
        None => format!("{stem}-{}", variation + 1),
    };
    path.with_file_name(name)
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<Outcome> {
    let (checkpoint, model_name) = open_model(args.model.as_deref())?;
    let selected = device::select(args.backend)?;
    if let Some(notice) = &selected.notice {
        eprintln!("note: {notice}");
    }
    let model = checkpoint
        .model(&selected.device)
        .with_context(|| format!("cannot load the model {model_name}"))?;

    let options = args
        .read
        .load_options_on(&MetaArgs::default(), checkpoint.header.steps_per_quarter());
    let (seed_roll, seed_name) = match &args.seed_file {
        Some(path) => (load_roll(path, &options)?.roll, path.display().to_string()),
        None => {
            let demo = default_demo();
            let (roll, _) = import(demo.midi, &options.midi)
                .with_context(|| format!("cannot read the shipped demo {}", demo.file_name))?;
            (roll, format!("{} (shipped demo)", demo.name))
        }
    };
    let rule = args.rule_params.rule(args.rule, &checkpoint.header);
    if args.variations > 1 && !rule.kind().draws_at_random() {
        let name = rule.kind().name();
        anyhow::bail!(
            "--variations {} with the {name} rule would write one roll {} times: it decides \
             every note the same way each time; variations need --rule sample (with \
             --temperature and --rng-seed)",
            args.variations,
            args.variations
        );
    }
    let constraints = args.bounds.constraints(&options)?;
    let started = Instant::now();
    let (continuations, first_step) = generate_steps(
        args,
        &model,
        &selected,
        &seed_roll,
        &seed_name,
        GenerateOptions {
            steps: args.steps,
            rule,
            variations: args.variations,
        },
        constraints,
    )?;
    let elapsed = started.elapsed();
    let engine = if selected.native_inference || model.architecture() == Architecture::Composer {
        "CPU (native inference)"
    } else {
        selected.label.as_str()
    };
    let steps = continuations.first().map_or(0, |c| c.steps.len());
    eprintln!(
        "{model_name} on {engine}: {} x {steps} steps from {seed_name} at step {first_step} in \
         {:.1} ms",
        args.variations,
        elapsed.as_secs_f64() * 1e3
    );

    let save = SaveOptions {
        midi: export_options(args.velocity, false),
        png_chunk_columns: None,
    };
    for (index, continuation) in continuations.iter().enumerate() {
        let roll = if args.fill.is_some() {
            continuation.written_into(&seed_roll, first_step)?
        } else {
            // The seed window proper: the last 9 steps of what the network heard.
            let seed = &seed_roll.sounding_masks()[first_step - WINDOW_STEPS..first_step];
            song_roll(continuation, seed, *seed_roll.meta(), args.include_seed)?
        };
        let out = numbered(&args.out, index, args.variations);
        save_roll(&roll, &out, &save)?;
        let mut written = vec![out.display().to_string()];
        if let Some(png) = &args.png {
            let png = numbered(png, index, args.variations);
            save_roll(&roll, &png, &save)?;
            written.push(png.display().to_string());
        }
        let sounding = continuation.steps.iter().filter(|&&m| m != 0).count();
        let peak = continuation
            .probabilities
            .iter()
            .copied()
            .fold(0.0f32, f32::max);
        println!(
            "{}: {} notes, {sounding} of {} generated steps sound, highest probability {peak:.3}",
            written.join(" + "),
            roll.note_count(),
            continuation.steps.len()
        );
    }
    Ok(Outcome::Success)
}

/// The fill, or the continuation, the flags ask for, and the index of its
/// first step in the seed file.
fn generate_steps(
    args: &GenerateArgs,
    model: &Network,
    selected: &SelectedDevice,
    seed_roll: &PianoRoll,
    seed_name: &str,
    options: GenerateOptions,
    constraints: Constraints,
) -> anyhow::Result<(Vec<Continuation>, usize)> {
    let meter = seed_roll.meta().meter();
    Ok(match &args.fill {
        Some(range) => {
            let fill = Fill {
                range: range.clone(),
                meter,
                constraints,
                options: GenerateOptions {
                    steps: range.len(),
                    ..options
                },
            };
            let filled = generate::fill(model, selected, seed_roll, &fill, &|| false)
                .with_context(|| format!("cannot fill steps {range:?} of {seed_name}"))?;
            (filled, range.start)
        }
        None => {
            let window = seed_context(seed_roll, args.seed_start)
                .with_context(|| format!("cannot take a seed window from {seed_name}"))?;
            let first_step = args.seed_start + WINDOW_STEPS;
            let placement = Placement {
                meter,
                first_step,
                after: None,
            };
            let runner = Runner::new(model, selected)?;
            let continued = compose(
                runner.predictor().as_mut(),
                window,
                &placement,
                &constraints,
                &options,
                &|| false,
            )?;
            (continued, first_step)
        }
    })
}

/// The generated steps (after the seed window when asked) as a roll with the
/// seed's tempo, grid and instrument.
fn song_roll(
    continuation: &Continuation,
    window: &[u128],
    meta: RollMeta,
    include_seed: bool,
) -> anyhow::Result<PianoRoll> {
    let mut steps = Vec::with_capacity(window.len() + continuation.steps.len());
    if include_seed {
        steps.extend_from_slice(window);
    }
    steps.extend_from_slice(&continuation.steps);
    Ok(PianoRoll::from_sounding(steps, meta)?)
}
