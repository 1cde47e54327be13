//! `cadenza model summary|info` and `cadenza import-keras`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::Outcome;
use crate::assets::open_model;
use crate::checkpoint::{Checkpoint, CheckpointHeader};
use crate::device;
use crate::keras::load_keras_npz;
use crate::model::summary::summarize_config;
use crate::model::{Architecture, ArticleNetConfig, Network, NetworkConfig};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print the network layer by layer, as Keras's model.summary() does.
    Summary {
        /// A model file or shipped model name (default: the article's shape).
        #[arg(long)]
        model: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show where a model came from, its settings and its loss history.
    Info {
        /// A model file or shipped model name (default: the shipped default).
        model: Option<String>,
        /// Print the header as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportKerasArgs {
    /// A NumPy .npz of the article's network's Keras weights, keys `NN.<layer>.<variable>`.
    pub weights: PathBuf,
    /// The Cadenza model file to write.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(command: &ModelCommand) -> anyhow::Result<Outcome> {
    match command {
        ModelCommand::Summary { model, json } => {
            let config = match model {
                Some(spec) => open_model(Some(spec))?.0.header.network,
                None => NetworkConfig::Article(ArticleNetConfig::article()),
            };
            if let Some(problem) = config.problem() {
                anyhow::bail!("the model's network cannot be built: {problem}");
            }
            let summary = summarize_config(&config);
            if *json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.to_text());
            }
        }
        ModelCommand::Info { model, json } => {
            let (checkpoint, name) = open_model(model.as_deref())?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&checkpoint.header)?);
            } else {
                print!("{}", describe(&name, &checkpoint));
            }
        }
    }
    Ok(Outcome::Success)
}

fn describe(name: &str, checkpoint: &Checkpoint) -> String {
    let header = &checkpoint.header;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{name}: {} network",
        header.network.architecture().name()
    );
    let _ = writeln!(text, "origin: {}", header.origin);
    let _ = writeln!(text, "written by cadenza {}", header.cadenza_version);
    let _ = writeln!(
        text,
        "resumable: {}",
        if checkpoint.optimizer_state().is_some() {
            "yes"
        } else {
            "no (no optimizer state)"
        }
    );
    if let Some(training) = &header.training {
        let s = &training.settings;
        let _ = writeln!(
            text,
            "trained on {} ({} training / {} validation {} per epoch) at {} steps per quarter: \
             preset {:?}, loss {:?}, batch {}, lr {}, rng seed {}",
            training.data,
            training.windows_train,
            training.windows_validation,
            match header.network.architecture() {
                Architecture::Article => "windows",
                // Every step of every stretch is a target.
                Architecture::RollLstm | Architecture::Composer => "predicted steps",
            },
            s.steps_per_quarter,
            s.preset,
            s.loss,
            s.batch_size,
            s.learning_rate,
            s.rng_seed
        );
        if header.network.architecture() != Architecture::Article {
            let _ = writeln!(
                text,
                "stretches of {} steps, transposed by up to {} semitones, {:.0}% of input steps \
                 fed back{}{}",
                s.sequence_steps,
                s.max_transpose,
                s.feedback * 100.0,
                if s.input_dropout > 0.0 {
                    format!(", {:.0}% of input notes dropped", s.input_dropout * 100.0)
                } else {
                    String::new()
                },
                if s.recurrent_dropout > 0.0 {
                    format!(
                        ", {:.0}% of hidden units dropped where they feed the next step",
                        s.recurrent_dropout * 100.0
                    )
                } else {
                    String::new()
                }
            );
        }
        if s.average_epochs > 1 {
            let _ = writeln!(
                text,
                "weights: averaged over about the last {} epochs{}",
                s.average_epochs,
                if checkpoint.optimizer_state().is_some() {
                    " (the optimizer's own are kept for --resume)"
                } else {
                    ""
                }
            );
        }
        text.push_str(&loss_table(training, header.network.architecture()));
    }
    text
}

/// The loss history as an aligned table, the best epoch marked; the
/// throughput in `architecture`'s unit.
pub fn loss_table(training: &crate::record::TrainingRecord, architecture: Architecture) -> String {
    let best = training.best_epoch().map(|r| r.epoch);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>6}  {:>11}  {:>11}  {:>7}  {:>9}  {:>17}  {:>8}  {:>12}",
        "epoch",
        "train loss",
        "val loss",
        "val F1",
        "threshold",
        architecture.training_unit(),
        "seconds",
        "music goals"
    );
    for r in &training.log {
        let optional = |v: Option<f64>, decimals: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
        };
        let _ = writeln!(
            text,
            "{:>6}  {:>11.6}  {:>11}  {:>7}  {:>9}  {:>17.0}  {:>8.1}  {:>12}{}",
            r.epoch,
            r.train_loss,
            optional(r.validation_loss, 6),
            optional(r.validation_f1, 3),
            optional(r.best_threshold, 3),
            r.windows_per_s,
            r.seconds,
            r.music.map_or_else(
                || "-".to_owned(),
                |m| format!("{} of 4 met", 4 - m.goals_missed())
            ),
            if Some(r.epoch) == best {
                "  <- best"
            } else {
                ""
            }
        );
    }
    text
}

pub fn import_keras(args: &ImportKerasArgs) -> anyhow::Result<Outcome> {
    let config = ArticleNetConfig::article();
    let model = load_keras_npz(&args.weights, &config, &device::cpu())
        .with_context(|| format!("cannot import {}", args.weights.display()))?;
    let origin = format!(
        "imported from Keras weights {}",
        args.weights.file_name().map_or_else(
            || args.weights.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    Checkpoint::new(
        CheckpointHeader::new(config, origin),
        &Network::Article(model),
    )?
    .save(&args.out)?;
    println!(
        "imported {} into {}",
        args.weights.display(),
        args.out.display()
    );
    Ok(Outcome::Success)
}

/// `cadenza devices`: the GPU adapters wgpu sees and what `auto` picks.
pub fn devices() -> anyhow::Result<Outcome> {
    let adapters = device::adapters();
    if adapters.is_empty() {
        println!("no wgpu adapters (Vulkan, Metal or DirectX 12)");
    }
    for adapter in adapters {
        println!(
            "{adapter}  driver: {}",
            if adapter.driver.is_empty() {
                "-"
            } else {
                &adapter.driver
            }
        );
    }
    let auto = device::select(device::BackendChoice::Auto)?;
    println!("--backend auto uses {}", auto.label);
    if let Some(notice) = auto.notice {
        println!("  ({notice})");
    }
    Ok(Outcome::Success)
}
