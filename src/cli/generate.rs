//! `cadenza generate`: continue a seed window with a model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;

use super::{MetaArgs, Outcome, ReadArgs, export_options};
use crate::assets::{default_demo, open_model};
use crate::checkpoint::CheckpointHeader;
use crate::device::{self, BackendChoice};
use crate::files::{SaveOptions, load_roll, save_roll};
use crate::generate::{
    Continuation, GenerateOptions, Rule, RuleKind, RuleSettings, generate_on, seed_context,
};
use crate::limits;
use crate::midi::import;
use crate::model::WINDOW_STEPS;
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
    /// Continuations to generate at once; more than one writes OUT-1.mid, OUT-2.mid, ...
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

    let options = args.read.load_options(&MetaArgs::default());
    let (seed_roll, seed_name) = match &args.seed_file {
        Some(path) => (load_roll(path, &options)?.roll, path.display().to_string()),
        None => {
            let demo = default_demo();
            let (roll, _) = import(demo.midi, &options.midi)
                .with_context(|| format!("cannot read the shipped demo {}", demo.file_name))?;
            (roll, format!("{} (shipped demo)", demo.name))
        }
    };
    let window = seed_context(&seed_roll, args.seed_start)
        .with_context(|| format!("cannot take a seed window from {seed_name}"))?;
    // The seed window proper: the last 9 steps of what the network hears.
    let seed = &window[window.len() - WINDOW_STEPS..];
    let generate_options = GenerateOptions {
        steps: args.steps,
        rule: args.rule_params.rule(args.rule, &checkpoint.header),
        variations: args.variations,
    };
    let started = Instant::now();
    let continuations = generate_on(&model, &selected, window, &generate_options)?;
    let elapsed = started.elapsed();
    let engine = if selected.native_inference {
        "CPU (native inference)"
    } else {
        selected.label.as_str()
    };
    eprintln!(
        "{model_name} on {engine}: {} x {} steps from {seed_name} at step {} in {:.1} ms",
        args.variations,
        args.steps,
        args.seed_start,
        elapsed.as_secs_f64() * 1e3
    );

    let save = SaveOptions {
        midi: export_options(args.velocity),
        png_chunk_columns: None,
    };
    for (index, continuation) in continuations.iter().enumerate() {
        let roll = song_roll(continuation, seed, *seed_roll.meta(), args.include_seed)?;
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
