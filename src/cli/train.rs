//! `cadenza train DATA_DIR --out MODEL ...`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::model::loss_table;
use super::{MetaArgs, Outcome, ReadArgs};
use crate::checkpoint::Checkpoint;
use crate::dataset::{Dataset, Preset};
use crate::device::{self, BackendChoice};
use crate::limits;
use crate::model::{Architecture, NetworkConfig};
use crate::record::{LossKind, MusicCheck, TrainSettings};
use crate::train::{self, TrainEnd, TrainEvent, Trainer, TrainingEngine, best_path, csv_path};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A folder of MIDI and/or midi2img PNG files, searched recursively.
    pub data_dir: PathBuf,
    /// The model file to write after each epoch (and to resume from).
    #[arg(long)]
    pub out: PathBuf,
    /// Total epochs (a resumed run continues up to this number).
    #[arg(long, default_value_t = 100, value_parser = |s: &str| limits::EPOCHS.parse(s))]
    pub epochs: usize,
    /// Stop when the validation loss has not improved for this many epochs,
    /// counted from the lowest loss of the whole run: a resumed run stops
    /// after one epoch if its lowest loss is already further back than this.
    #[arg(long, value_name = "EPOCHS", value_parser = |s: &str| limits::EPOCHS.parse(s))]
    pub patience: Option<usize>,
    /// Where to train: `auto` and `cpu` train on the CPU with Cadenza's
    /// plain-Rust trainer (faster than burn on the GPUs measured); `gpu`
    /// trains through burn on the best GPU adapter.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// The network: `roll-lstm` (Cadenza's: an LSTM over the steps, state
    /// carried along), `composer` (the steps as chords, with the beat and
    /// both-sided fill) or `article` (the article's Conv1D + LSTM over 9-step
    /// windows).
    #[arg(long, value_enum, default_value_t = Architecture::RollLstm)]
    pub arch: Architecture,
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// How windows are cut for the article's network: `forward` (next step)
    /// or `article` (as the article did: time reversed, two steps ahead).
    #[arg(long, value_enum, default_value_t = Preset::Forward)]
    pub preset: Preset,
    /// The loss [default: bce for roll-lstm, mse (the article's) for article].
    #[arg(long, value_enum)]
    pub loss: Option<LossKind>,
    #[arg(long, default_value_t = 32, value_parser = |s: &str| limits::BATCH.parse(s))]
    pub batch: usize,
    /// Adam's learning rate [default: 1e-3]. With --resume, continues the
    /// run at this rate from then on (e.g. lower, to settle a run that has
    /// stopped improving).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fraction of the files held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    /// Validate on the files of this folder instead of a share of DATA_DIR's
    /// (a benchmark's own split, e.g. `../shared/jsb/valid`).
    #[arg(long, value_name = "DIR", conflicts_with = "val")]
    pub val_dir: Option<PathBuf>,
    /// Seeds the weights, the split and the shuffling.
    #[arg(long, default_value_t = 0, alias = "seed")]
    pub rng_seed: u64,
    /// roll-lstm: steps per training stretch (the network learns from every
    /// step of each).
    #[arg(long, default_value_t = 64, value_name = "STEPS",
          value_parser = |s: &str| limits::SEQUENCE_STEPS.parse(s))]
    pub sequence_steps: usize,
    /// roll-lstm: move each training stretch by a random interval of up to
    /// this many semitones (0: never) [default: 5 for roll-lstm; the
    /// article's windows are never moved].
    #[arg(long, value_name = "SEMITONES")]
    pub transpose: Option<u8>,
    /// roll-lstm: share of input steps replaced by the network's own
    /// thresholded prediction while training (scheduled sampling), 0..1
    /// [default: 0.25 for roll-lstm; none for the article's network]. With
    /// --resume, continues the run at this share from then on (e.g. 0, to
    /// settle a run on the music as it is).
    #[arg(long, value_name = "SHARE")]
    pub feedback: Option<f64>,
    /// roll-lstm: share of sounding input cells silenced while training (the
    /// rest scaled up to keep the mean), 0 up to 1, after any feedback: a
    /// regulariser for small corpora [default: 0]. With --resume, continues
    /// the run at this share from then on.
    #[arg(long, value_name = "SHARE")]
    pub input_dropout: Option<f64>,
    /// roll-lstm: share of the LSTM's hidden units silenced where they feed
    /// its next step while training, 0 up to 1 (one draw per stretch, the
    /// same at every step; the rest scaled up to keep the mean): a
    /// regulariser of the recurrence itself [default: 0]. With --resume,
    /// continues the run at this share from then on.
    #[arg(long, value_name = "SHARE")]
    pub recurrent_dropout: Option<f64>,
    /// Validate and save an average of the weights at the end of recent
    /// epochs, exponential, as old on average as the last EPOCHS epochs'
    /// mean (0 or 1: the weights as they are). It often scores lower on
    /// held-out music than the last epoch's weights; the optimizer goes on
    /// from its own. With --resume, averages from then on.
    #[arg(long, value_name = "EPOCHS", value_parser = |s: &str| limits::AVERAGE_EPOCHS.parse(s))]
    pub average_epochs: Option<usize>,
    /// Continue the run saved in --out, with its own settings (but --lr,
    /// --feedback, --input-dropout, --recurrent-dropout and --average-epochs,
    /// when given).
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<Outcome> {
    let selected = device::select_for_training(args.backend)?;
    if let Some(notice) = &selected.notice {
        eprintln!("note: {notice}");
    }

    let resumed = if args.resume {
        if !args.out.exists() {
            bail!("--resume: {} does not exist yet", args.out.display());
        }
        Some(
            Checkpoint::load(&args.out)
                .with_context(|| format!("cannot resume from {}", args.out.display()))?,
        )
    } else {
        None
    };
    let settings = match resumed.as_ref().and_then(|c| c.header.training.as_ref()) {
        Some(record) => {
            let grid = record.settings.steps_per_quarter;
            if let Some(asked) = args.read.steps_per_quarter
                && asked != grid
            {
                bail!("--resume: the run reads its music at {grid} steps per quarter, not {asked}");
            }
            record.settings.clone()
        }
        None => {
            // The network's own defaults, then what the user gave.
            let defaults = train::default_settings(args.arch);
            TrainSettings {
                preset: args.preset,
                loss: args.loss.unwrap_or(defaults.loss),
                batch_size: args.batch,
                learning_rate: args.lr.unwrap_or(1e-3),
                validation_fraction: args.val,
                rng_seed: args.rng_seed,
                sequence_steps: args.sequence_steps,
                max_transpose: args.transpose.unwrap_or(defaults.max_transpose),
                feedback: args.feedback.unwrap_or(defaults.feedback),
                input_dropout: args.input_dropout.unwrap_or(defaults.input_dropout),
                recurrent_dropout: args.recurrent_dropout.unwrap_or(defaults.recurrent_dropout),
                validation_dir: args.val_dir.as_ref().map(|d| d.display().to_string()),
                steps_per_quarter: args
                    .read
                    .steps_per_quarter
                    .unwrap_or(crate::roll::DEFAULT_STEPS_PER_QUARTER),
                average_epochs: args.average_epochs.unwrap_or(defaults.average_epochs),
            }
        }
    };
    let data = load_data(args, &settings)?;

    let mut trainer = match &resumed {
        Some(checkpoint) => resumed_trainer(checkpoint, args, &selected.device)?,
        None => Trainer::new(
            args.shape.applied_to(&args.arch.default_config())?,
            settings,
            &data,
            &args.data_dir.display().to_string(),
            &selected.device,
        )?,
    };

    announce(&selected, &trainer);
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    // Ctrl-C stops between batches; the last complete epoch stays saved.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));

    let batches_per_epoch = trainer.batches_per_epoch(&data);
    let epochs_left = args.epochs.saturating_sub(trainer.record().epochs_done());
    let bar = ProgressBar::new((batches_per_epoch * epochs_left) as u64).with_style(
        ProgressStyle::with_template(
            "{bar:30} epoch {prefix} {msg} [{elapsed} elapsed, ETA {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let epochs = args.epochs;
    let unit = trainer.architecture().training_unit();
    let mut on_event = |event: &TrainEvent| show_progress(&bar, epochs, unit, event);
    let end = trainer.fit(
        &data,
        args.epochs,
        args.patience,
        &args.out,
        &cancel,
        &mut on_event,
    );
    bar.finish_and_clear();
    let end = end?;
    print_outcome(args, &trainer, end);
    Ok(Outcome::Success)
}

/// The run saved in `checkpoint`, going on with the learning rate, feedback,
/// input dropout and averaging `args` give, if any.
fn resumed_trainer(
    checkpoint: &Checkpoint,
    args: &TrainArgs,
    device: &burn::tensor::Device,
) -> anyhow::Result<Trainer> {
    let mut trainer = Trainer::resume(checkpoint, device)?;
    eprintln!(
        "resuming after epoch {} of {}",
        trainer.record().epochs_done(),
        args.epochs
    );
    // Said once the run has taken the new value: a refused one says why instead.
    if let Some(lr) = args.lr {
        let was = trainer.record().settings.learning_rate;
        trainer.set_learning_rate(lr)?;
        eprintln!("continuing at learning rate {lr} (was {was})");
    }
    if let Some(feedback) = args.feedback {
        let was = trainer.record().settings.feedback;
        trainer.set_feedback(feedback)?;
        eprintln!("continuing with feedback {feedback} (was {was})");
    }
    if let Some(share) = args.input_dropout {
        let was = trainer.record().settings.input_dropout;
        trainer.set_input_dropout(share)?;
        eprintln!("continuing with input dropout {share} (was {was})");
    }
    if let Some(share) = args.recurrent_dropout {
        let was = trainer.record().settings.recurrent_dropout;
        trainer.set_recurrent_dropout(share)?;
        eprintln!("continuing with recurrent dropout {share} (was {was})");
    }
    if let Some(epochs) = args.average_epochs {
        let was = trainer.record().settings.average_epochs;
        trainer.set_average_epochs(epochs)?;
        eprintln!("continuing with the weights averaged over {epochs} epochs (was {was})");
    }
    Ok(trainer)
}

/// Says where the run trains and with what: a run resumed from the CPU
/// trainer's state goes on there whatever the device.
fn announce(selected: &device::SelectedDevice, trainer: &Trainer) {
    let place = match trainer.engine() {
        TrainingEngine::PlainRust => "the CPU",
        TrainingEngine::Burn => selected.label.as_str(),
    };
    eprintln!("training on {place} with the {}", trainer.engine().label());
}

/// Reads the training folder and says what it found.
fn load_data(args: &TrainArgs, settings: &TrainSettings) -> anyhow::Result<Dataset> {
    let load = args
        .read
        .load_options_on(&MetaArgs::default(), Some(settings.steps_per_quarter));
    let data = match &settings.validation_dir {
        Some(validation) => Dataset::from_folders(
            &args.data_dir,
            Path::new(validation),
            &load,
            settings.preset,
        )?,
        None => Dataset::from_folder(
            &args.data_dir,
            &load,
            settings.preset,
            settings.validation_fraction,
            settings.rng_seed,
        )?,
    };
    let report = data.report();
    for (path, reason) in &report.files_failed {
        eprintln!("skipped {}: {reason}", path.display());
    }
    eprintln!(
        "{} files ({} for validation, {} too short, {} unreadable): {} training and {} \
         validation windows",
        report.files_used,
        report.files_validation,
        report.files_too_short,
        report.files_failed.len(),
        report.windows_train,
        report.windows_validation
    );
    Ok(data)
}

/// The loss table and how the run ended.
fn print_outcome(args: &TrainArgs, trainer: &Trainer, end: TrainEnd) {
    println!(
        "{}",
        loss_table(trainer.record(), trainer.architecture()).trim_end()
    );
    let done = trainer.record().epochs_done();
    match end {
        TrainEnd::Finished => println!("finished {done} epochs"),
        TrainEnd::EarlyStopped => println!(
            "stopped after epoch {done}: no validation improvement for {} epochs",
            args.patience.unwrap_or_default()
        ),
        TrainEnd::Cancelled => {
            println!("cancelled; epoch {done} is the last saved (continue with --resume)");
        }
    }
    if done > 0 {
        println!(
            "model: {} (best epoch: {}), loss history: {}",
            args.out.display(),
            best_path(&args.out).display(),
            csv_path(&args.out).display()
        );
    }
}

/// Moves the bar on each batch and prints a line per epoch, the
/// throughput in `unit`.
fn show_progress(bar: &ProgressBar, epochs: usize, unit: &str, event: &TrainEvent) {
    match event {
        TrainEvent::Batch {
            epoch,
            batch,
            batches,
            loss,
            windows_per_s,
            ..
        } => {
            bar.inc(1);
            bar.set_prefix(format!("{epoch}/{epochs}"));
            bar.set_message(format!(
                "batch {batch}/{batches} loss {loss:.5} {windows_per_s:.0} {unit}"
            ));
        }
        TrainEvent::Epoch(record) => {
            let f1 = match (record.validation_f1, record.best_threshold) {
                (Some(f1), Some(threshold)) => format!(", F1 {f1:.3} at {threshold:.3}"),
                _ => String::new(),
            };
            let music = record
                .music
                .as_ref()
                .map_or_else(String::new, music_summary);
            let line = format!(
                "epoch {}: train loss {:.6}, validation loss {}{f1}, {:.0} {unit}{music}",
                record.epoch,
                record.train_loss,
                record
                    .validation_loss
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.6}")),
                record.windows_per_s
            );
            // A hidden bar (output not a terminal) prints nothing: say it plainly.
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    }
}

/// `; music: ...` for an epoch line: each figure of the continuations beside
/// the music's, and how many goals they miss.
fn music_summary(music: &MusicCheck) -> String {
    let pair = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (Some(a), Some(b)) => format!("{:.1}% ({:.1}%)", 100.0 * a, 100.0 * b),
        _ => "-".to_owned(),
    };
    format!(
        "; music (the real music's): clashes {}, in key {}, on a beat {}, density {:.2}; {} of 4 goals missed",
        pair(music.clash_share, music.data_clash_share),
        pair(music.in_key_share, music.data_in_key_share),
        pair(music.on_beat_share, music.data_on_beat_share),
        music.density_ratio,
        music.goals_missed()
    )
}

/// The network's size, where the default does not suit the data.
#[derive(Debug, Args)]
pub struct ShapeArgs {
    /// roll-lstm and composer: units of the LSTM over the steps [default: 256].
    #[arg(long, value_parser = |s: &str| limits::NETWORK_UNITS.parse(s))]
    pub units: Option<usize>,
    /// composer: units of the LSTM over the music after a gap [default: 128].
    #[arg(long, value_parser = |s: &str| limits::NETWORK_UNITS.parse(s))]
    pub future_units: Option<usize>,
    /// composer: hidden units of its pitch-by-pitch (NADE) output [default: 128].
    #[arg(long, value_parser = |s: &str| limits::NETWORK_UNITS.parse(s))]
    pub nade_units: Option<usize>,
    /// roll-lstm and composer: dropout while training, 0..1 [default: 0.2].
    #[arg(long)]
    pub dropout: Option<f64>,
}

impl ShapeArgs {
    /// `config` with the sizes given; an error names a size the network
    /// does not have.
    fn applied_to(&self, config: &NetworkConfig) -> anyhow::Result<NetworkConfig> {
        let not_for = |flag: &str| {
            anyhow::anyhow!(
                "{flag} does not apply to the {} network",
                config.architecture().name()
            )
        };
        Ok(match config.clone() {
            NetworkConfig::Article(article) => {
                if self.units.is_some() || self.dropout.is_some() {
                    return Err(not_for("--units/--dropout"));
                }
                if self.future_units.is_some() || self.nade_units.is_some() {
                    return Err(not_for("--future-units/--nade-units"));
                }
                NetworkConfig::Article(article)
            }
            NetworkConfig::RollLstm(mut roll) => {
                if self.future_units.is_some() || self.nade_units.is_some() {
                    return Err(not_for("--future-units/--nade-units"));
                }
                roll.units = self.units.unwrap_or(roll.units);
                roll.dropout = self.dropout.unwrap_or(roll.dropout);
                NetworkConfig::RollLstm(roll)
            }
            NetworkConfig::Composer(mut composer) => {
                composer.units = self.units.unwrap_or(composer.units);
                composer.future_units = self.future_units.unwrap_or(composer.future_units);
                composer.nade_units = self.nade_units.unwrap_or(composer.nade_units);
                composer.dropout = self.dropout.unwrap_or(composer.dropout);
                NetworkConfig::Composer(composer)
            }
        })
    }
}
