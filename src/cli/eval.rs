//! `cadenza eval`: a model's held-out figures.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::generate::RuleArgs;
use super::{MetaArgs, Outcome, ReadArgs};
use crate::assets::open_model;
use crate::dataset::{Dataset, Preset};
use crate::device::{self, BackendChoice};
use crate::eval::{COPY_STRETCH, Evaluation, evaluate};
use crate::generate::{BurnPredictor, GenerateOptions, NativePredictor, Predictor};
use crate::model::native::NativeSeedNet;

/// Scores a model on music it was not trained on.
///
/// Teacher forcing (the model sees real 9-step windows): binary cross-entropy
/// in nats per step (summed over the 106 pitches), mean squared error, and
/// frame-level precision, recall, F1 and accuracy TP/(TP+FP+FN) (Boulanger-
/// Lewandowski et al., 2012) at threshold 0.5 and at the threshold with the
/// best F1.
///
/// Free running (the model continues every --stride-th real window for --steps
/// steps with the chosen rule): notes per step next to the data's (the
/// "vanish curve", by generated step), the share of empty steps, notes per
/// non-empty step, the distance between the pitch-class histograms (0 = the
/// same, 1 = disjoint), the mean note length, and the share of generated
/// 16-step stretches that occur verbatim in the training songs.
///
/// Held-out files: when DATA_DIR is the folder the model was trained on, its
/// validation files (same fraction and seed); otherwise every file.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A folder of MIDI and/or PNG files.
    pub data_dir: PathBuf,
    /// A model file or shipped model name (default: the shipped default).
    #[arg(long)]
    pub model: Option<String>,
    /// Score every file, even when DATA_DIR is the model's training folder.
    #[arg(long)]
    pub all_files: bool,
    /// Every how many held-out windows a continuation starts.
    #[arg(long, default_value_t = 16)]
    pub stride: usize,
    /// Steps per continuation.
    #[arg(long, default_value_t = 106)]
    pub steps: usize,
    #[command(flatten)]
    pub rule: RuleArgs,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    model: &'a str,
    data: String,
    held_out_files: usize,
    rule: String,
    #[serde(flatten)]
    evaluation: &'a Evaluation,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<Outcome> {
    let (checkpoint, model_name) = open_model(args.model.as_deref())?;
    let training = checkpoint.header.training.as_ref();
    let same_folder = training.is_some_and(|t| {
        let trained = std::path::Path::new(&t.data).canonicalize().ok();
        trained.is_some() && trained == args.data_dir.canonicalize().ok()
    });
    let (preset, validation, seed) = match training {
        Some(t) if same_folder && !args.all_files => (
            t.settings.preset,
            t.settings.validation_fraction,
            t.settings.seed,
        ),
        Some(t) => (t.settings.preset, 0.0, 0),
        None => (Preset::Forward, 0.0, 0),
    };
    let data = Dataset::from_folder(
        &args.data_dir,
        &args.read.load_options(&MetaArgs::default()),
        preset,
        validation,
        seed,
    )?;
    // With no split every file is held out: score them as "validation".
    let data = if validation == 0.0 {
        data.all_held_out()
    } else {
        data
    };
    let selected = device::select(args.backend)?;
    let model = checkpoint
        .model(&selected.device)
        .with_context(|| format!("cannot load the model {model_name}"))?;
    let options = GenerateOptions {
        steps: args.steps,
        rule: args.rule.rule(),
        variations: 1,
    };
    let evaluation = if selected.native_inference {
        let net = NativeSeedNet::from_model(&model)?;
        run_eval(
            &mut NativePredictor::new(&net),
            &data,
            &options,
            args.stride,
        )?
    } else {
        run_eval(
            &mut BurnPredictor::new(&model, &selected.device),
            &data,
            &options,
            args.stride,
        )?
    };
    let report = Report {
        model: &model_name,
        data: args.data_dir.display().to_string(),
        held_out_files: data.report().files_validation,
        rule: format!("{:?}", options.rule),
        evaluation: &evaluation,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", to_text(&report));
    }
    Ok(Outcome::Success)
}

fn run_eval(
    predictor: &mut dyn Predictor,
    data: &Dataset,
    options: &GenerateOptions,
    stride: usize,
) -> anyhow::Result<Evaluation> {
    Ok(evaluate(predictor, data, options, stride)?)
}

fn to_text(report: &Report<'_>) -> String {
    let (t, f) = (
        &report.evaluation.teacher_forced,
        &report.evaluation.free_running,
    );
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} on {} ({} held-out files, {} windows)",
        report.model, report.data, report.held_out_files, t.windows
    );
    let _ = writeln!(
        text,
        "teacher forced: BCE {:.3} nats/step, MSE {:.5}",
        t.bce_nats_per_step, t.mse
    );
    for (name, s) in [("at 0.5", &t.at_half), ("best", &t.best)] {
        let _ = writeln!(
            text,
            "  {name:>6} (threshold {:.3}): precision {:.3}, recall {:.3}, F1 {:.3}, accuracy {:.3}",
            s.threshold, s.precision, s.recall, s.f1, s.accuracy
        );
    }
    let _ = writeln!(
        text,
        "free running, {} from {} seeds: {:.2} notes/step (data {:.2}, ratio {:.2}), empty steps \
         {:.1}%, polyphony {:.2} (data {:.2}), pitch-class distance {:.3}, note length {:.1} \
         steps (data {:.1}), {}-step stretches copied from training: {}",
        report.rule,
        f.seeds,
        f.notes_per_step,
        f.data_notes_per_step,
        f.density_ratio,
        f.empty_step_rate * 100.0,
        f.polyphony,
        f.data_polyphony,
        f.pitch_class_distance,
        f.mean_note_length,
        f.data_mean_note_length,
        COPY_STRETCH,
        f.copied_stretch_rate.map_or_else(
            || "- (training songs not given)".to_owned(),
            |rate| format!("{:.1}%", rate * 100.0)
        )
    );
    let curve: Vec<String> = f
        .vanish_curve
        .iter()
        .step_by((f.vanish_curve.len() / 8).max(1))
        .map(|v| format!("{v:.2}"))
        .collect();
    let _ = writeln!(
        text,
        "vanish curve (notes per step every {} steps): {}",
        (f.vanish_curve.len() / 8).max(1),
        curve.join(" ")
    );
    text
}
