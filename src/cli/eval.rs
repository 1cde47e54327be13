//! `cadenza eval`: a model's held-out figures.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::generate::RuleParams;
use super::{MetaArgs, Outcome, ReadArgs};
use crate::assets::open_model;
use crate::atomic::write_atomically;
use crate::device::{self, BackendChoice};
use crate::eval::{COPY_STRETCH, Evaluation, evaluate, held_out_data, vanish_curves_svg};
use crate::generate::{GenerateOptions, Rule, RuleKind, Runner};
use crate::limits;

/// Scores a model on music it was not trained on.
///
/// Teacher forcing (the model is fed the real music, from each song's first
/// 9 steps on, and predicts every next step): binary cross-entropy
/// in nats per step (summed over the 106 pitches), mean squared error, and
/// frame-level precision, recall, F1 and accuracy TP/(TP+FP+FN) (Boulanger-
/// Lewandowski et al., 2012) at threshold 0.5 and at the threshold with the
/// best F1.
///
/// Free running (the model continues the music before the end of every
/// --stride-th real 9-step window, up to 64 steps of it, for --steps steps
/// with the chosen rule, by default the model's own: sampling
/// for roll-lstm networks, the article's boost for its network): notes
/// per step next to the data's (the "vanish curve", by generated step, with
/// its lowest and highest point as a share of the data's), the share of
/// empty steps, notes per
/// non-empty step, the distance between the pitch-class histograms (0 = the
/// same, 1 = disjoint), the mean note length, and the share of generated
/// 16-step stretches that occur verbatim in the training songs.
///
/// Likelihood (whole songs, each from its first step, predicted from silence
/// and the initial state): `frame_nll_88`, the JSB Chorales benchmark's
/// figure, nats per frame summed over the 88 piano keys (MIDI 21..=108),
/// sounding and silent alike, pooled over every frame; and the same over all
/// 106 rows. The composer scores a step by the chain rule; networks with
/// independent outputs multiply their pitches' probabilities.
///
/// With --fill N: real N-step gaps (one every 2N+1 steps of each song, so
/// they start at every place in the bar, with music on both sides) scored
/// given both sides (`fill_nll_per_frame`) and given the music before only
/// (`continue_nll_per_frame`), nats per frame over all rows; and the same
/// over the gaps that start on a beat, as a selection snapped to beats
/// would. Only the composer hears the music after a gap.
///
/// Music (generated continuations beside the real steps that follow the
/// same seed windows): the share of sounding steps with a semitone clash
/// (two notes a minor second, major seventh or minor ninth apart), the share
/// of note onsets in the key estimated from the 64 steps before (Krumhansl-
/// Kessler profiles; a minor key also admits its raised 6th and 7th), the
/// share of onsets on a beat (the file's time signature on the grid, 4/4
/// where it has none), and notes per step.
///
/// Held-out files: when DATA_DIR is the folder the model was trained on, its
/// validation files (same fraction and rng seed); otherwise every file.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A folder of MIDI and/or PNG files.
    pub data_dir: PathBuf,
    /// A model file or shipped model name (default: the shipped default);
    /// repeat to score several on the same files, each with its own default
    /// rule unless --rule is given.
    #[arg(long)]
    pub model: Vec<String>,
    /// Score every file, even when DATA_DIR is the model's training folder.
    #[arg(long)]
    pub all_files: bool,
    /// Every how many held-out windows a continuation starts.
    #[arg(long, default_value_t = 16, value_parser = |s: &str| limits::EVAL_STRIDE.parse(s))]
    pub stride: usize,
    /// Steps per continuation.
    #[arg(long, default_value_t = 106, value_parser = |s: &str| limits::GENERATE_STEPS.parse(s))]
    pub steps: usize,
    /// Also score real gaps of this many steps from both sides and from the
    /// left only (the composer).
    #[arg(long, value_name = "N", value_parser = |s: &str| limits::GENERATE_STEPS.parse(s))]
    pub fill: Option<usize>,
    /// How probabilities become notes [default: each model's own: sample for
    /// roll-lstm networks, boost for the article's]. Given once, for every
    /// model; given once per --model, paired with them in order.
    #[arg(long = "rule", value_enum)]
    pub rules: Vec<RuleKind>,
    #[command(flatten)]
    pub rule_params: RuleParams,
    #[arg(long, value_enum, default_value_t = BackendChoice::Cpu)]
    pub backend: BackendChoice,
    /// Print one JSON object (an array of them for several models).
    #[arg(long)]
    pub json: bool,
    /// Also draw the models' vanish curves and the data's density to this
    /// SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    architecture: &'static str,
    data: String,
    held_out_files: usize,
    rule: String,
    #[serde(skip)]
    rule_used: Rule,
    #[serde(flatten)]
    evaluation: Evaluation,
}

impl Report {
    /// The model and its rule, for a plot's legend.
    fn legend(&self) -> String {
        let rule = match self.rule_used {
            Rule::Boost {
                vanish_proof,
                vanish_inc,
            } => format!("boost {vanish_proof}/{vanish_inc}"),
            Rule::Threshold { threshold } => format!("threshold {threshold:.2}"),
            Rule::Sample { temperature, .. } => format!("sample at {temperature}"),
        };
        format!("{}, {rule}", self.model.trim_end_matches(" (shipped)"))
    }
}

pub fn run(args: &EvalArgs) -> anyhow::Result<Outcome> {
    let specs: Vec<Option<&str>> = if args.model.is_empty() {
        vec![None]
    } else {
        args.model.iter().map(|m| Some(m.as_str())).collect()
    };
    let rules: Vec<Option<RuleKind>> = match args.rules.as_slice() {
        [] => vec![None; specs.len()],
        [one] => vec![Some(*one); specs.len()],
        several if several.len() == specs.len() => several.iter().copied().map(Some).collect(),
        several => anyhow::bail!(
            "{} --rule flags for {} models: give one for all, or one per --model",
            several.len(),
            specs.len()
        ),
    };
    let selected = device::select(args.backend)?;
    let mut reports = Vec::with_capacity(specs.len());
    for (spec, rule) in specs.into_iter().zip(rules) {
        reports.push(evaluate_one(args, spec, rule, &selected)?);
    }
    if let Some(path) = &args.plot {
        let curves: Vec<(String, Vec<f64>)> = reports
            .iter()
            .map(|r| (r.legend(), r.evaluation.free_running.vanish_curve.clone()))
            .collect();
        let data_density = reports
            .first()
            .map_or(0.0, |r| r.evaluation.free_running.data_notes_per_step);
        write_atomically(path, vanish_curves_svg(&curves, data_density).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("vanish curves: {}", path.display());
    }
    if args.json {
        let json = match reports.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            several => serde_json::to_string_pretty(several)?,
        };
        println!("{json}");
    } else {
        for report in &reports {
            print!("{}", to_text(report));
        }
    }
    Ok(Outcome::Success)
}

/// Scores one model on its held-out part of DATA_DIR.
fn evaluate_one(
    args: &EvalArgs,
    spec: Option<&str>,
    rule: Option<RuleKind>,
    selected: &device::SelectedDevice,
) -> anyhow::Result<Report> {
    let (checkpoint, model_name) = open_model(spec)?;
    let data = held_out_data(
        &checkpoint.header,
        &args.data_dir,
        &args
            .read
            .load_options_on(&MetaArgs::default(), checkpoint.header.steps_per_quarter()),
        args.all_files,
    )?;
    let model = checkpoint
        .model(&selected.device)
        .with_context(|| format!("cannot load the model {model_name}"))?;
    let options = GenerateOptions {
        steps: args.steps,
        rule: args.rule_params.rule(rule, &checkpoint.header),
        variations: 1,
    };
    let runner = Runner::new(&model, selected)?;
    let evaluation = evaluate(
        runner.predictor().as_mut(),
        &data,
        &options,
        args.stride,
        args.fill,
    )?;
    Ok(Report {
        model: model_name,
        architecture: checkpoint.header.network.architecture().name(),
        data: args.data_dir.display().to_string(),
        held_out_files: data.report().files_validation,
        rule: format!("{:?}", options.rule),
        rule_used: options.rule,
        evaluation,
    })
}

fn to_text(report: &Report) -> String {
    let (t, f) = (
        &report.evaluation.teacher_forced,
        &report.evaluation.free_running,
    );
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{}: {} network on {} ({} held-out files, {} windows)",
        report.model, report.architecture, report.data, report.held_out_files, t.windows
    );
    let _ = writeln!(
        text,
        "teacher forced: BCE {:.3} nats/step, MSE {:.5}",
        t.bce_nats_per_step, t.mse
    );
    let l = &report.evaluation.likelihood;
    let _ = writeln!(
        text,
        "likelihood of whole songs ({} frames): frame_nll_88 {:.3} nats/frame (88 keys), {:.3} \
         over all 106 rows",
        l.frames, l.frame_nll_88, l.nll_per_step
    );
    if let Some(fill) = &report.evaluation.fill {
        write_fill(&mut text, fill);
    }
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
    let percent =
        |share: Option<f64>| share.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    let number = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let (m, d) = (&f.music, &f.data_music);
    let _ = writeln!(
        text,
        "music, generated | real: semitone clashes {} | {}, notes in key {} | {}, onsets on a \
         beat {} | {}, notes per step {} | {}",
        percent(m.clash_share),
        percent(d.clash_share),
        percent(m.in_key_share),
        percent(d.in_key_share),
        percent(m.on_beat_share),
        percent(d.on_beat_share),
        number(m.notes_per_step),
        number(d.notes_per_step)
    );
    let curve: Vec<String> = f
        .vanish_curve
        .iter()
        .step_by((f.vanish_curve.len() / 8).max(1))
        .map(|v| format!("{v:.2}"))
        .collect();
    let _ = writeln!(
        text,
        "vanish curve (notes per step every {} steps): {}; lowest {:.2}, highest {:.2} of \
         the data's density",
        (f.vanish_curve.len() / 8).max(1),
        curve.join(" "),
        f.curve_ratio_range.0,
        f.curve_ratio_range.1
    );
    text
}

/// The fill figures' line: every gap, then those that start on a beat.
fn write_fill(text: &mut String, fill: &crate::eval::FillLikelihood) {
    let gain = |with: f64, without: f64| 100.0 * (1.0 - with / without.max(1e-12));
    let _ = writeln!(
        text,
        "{} gaps of {} steps: fill_nll_per_frame {:.3}, continue_nll_per_frame {:.3} ({:.1}% \
         lower with the music after); the {} starting on a beat: {:.3} against {:.3} ({:.1}%)",
        fill.gaps,
        fill.gap,
        fill.fill_nll_per_frame,
        fill.continue_nll_per_frame,
        gain(fill.fill_nll_per_frame, fill.continue_nll_per_frame),
        fill.on_beat_gaps,
        fill.on_beat_fill_nll_per_frame,
        fill.on_beat_continue_nll_per_frame,
        gain(
            fill.on_beat_fill_nll_per_frame,
            fill.on_beat_continue_nll_per_frame
        ),
    );
}
