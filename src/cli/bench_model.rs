//! `cadenza bench model`: generation latency and training throughput of a
//! model (the default one unless named), per device. Printed figures only; never run by the tests.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::assets::{DEMO_ROLLS, open_model};
use crate::dataset::{Dataset, Preset};
use crate::device::{self, BackendChoice, SelectedDevice};
use crate::files::LoadOptions;
use crate::generate::{
    Constraints, Fill, GenerateOptions, RuleKind, RuleSettings, Runner, fill, generate_on,
    generate_with, seed_window,
};
use crate::midi::{ImportOptions, import};
use crate::model::{Architecture, ArticleNetConfig, Network};
use crate::roll::PianoRoll;
use crate::train::{self, Trainer, TrainingEngine};

/// The figures, also printed as JSON.
#[derive(Debug, Serialize)]
pub struct ModelFigures {
    /// Median wall time of one 106-step generation, model loaded, in ms
    /// (the CPU path generation uses: the network's plain-Rust copy).
    pub generate_ms_cpu: f64,
    /// The same with the network's plain-Rust copy made once beforehand, as
    /// the app keeps it (the CLI makes it for each generation): what the
    /// arithmetic the generation needs is compared with.
    pub generate_kept_ms_cpu: f64,
    /// The same through burn's flex backend, for comparison (none for the
    /// composer, which always draws on its plain-Rust copy).
    pub generate_ms_cpu_burn: Option<f64>,
    /// The same for 8 variations at once, drawn with `variations_rule`.
    pub generate8_ms_cpu: f64,
    /// One generation with `variations_rule`, where that is not the model's
    /// own rule: what the 8 variations compare with.
    pub generate_one_of_8_ms_cpu: Option<f64>,
    /// The rule every generation figure uses: the model's own, as the CLI
    /// and the app draw with it.
    pub rule: String,
    /// The rule of the variations: the model's own when it draws at random,
    /// else sampling at temperature 1 (the boost and the threshold would give
    /// one roll 8 times, and the CLI refuses them variations).
    pub variations_rule: String,
    /// A 32-step fill of the demo with music on both sides (the composer;
    /// none for networks that only continue).
    pub fill32_ms_cpu: Option<f64>,
    /// One step of one variation (generate_ms_cpu / 106).
    pub step_ms_cpu: f64,
    /// Predicted steps per second training the benched model's network
    /// with its default settings at batch 32 (forward + backward + Adam, and
    /// the roll LSTM's feedback pass): windows for the article's network,
    /// every step of the stretches for the others.
    pub train_windows_per_s_cpu: f64,
    /// What that figure (and the GPU's) counts: `windows/s` or `predicted steps/s`.
    pub train_unit: &'static str,
    /// Training throughput of every network, each in its unit, on each
    /// engine, as the peer script measures it (`benches/peers/`).
    pub training: Vec<TrainingFigure>,
    pub generate_ms_gpu: Option<f64>,
    pub generate8_ms_gpu: Option<f64>,
    pub step_ms_gpu: Option<f64>,
    pub train_windows_per_s_gpu: Option<f64>,
    pub gpu: Option<String>,
    pub model: String,
    pub train_data: String,
    pub train_windows: usize,
}

/// One network's training throughput on one device and engine.
#[derive(Debug, Serialize)]
pub struct TrainingFigure {
    /// `article`, `roll` or `composer`, as the peer script names them.
    pub network: &'static str,
    pub parameters: usize,
    /// What is counted: `windows/s` or `predicted steps/s`.
    pub unit: &'static str,
    /// What ran it: the plain-Rust CPU trainer or burn autodiff.
    pub engine: &'static str,
    /// `cpu` or the GPU adapter's name.
    pub device: String,
    /// How the settings differ from the network's defaults, if they do.
    pub settings: &'static str,
    pub per_s: f64,
}

impl ModelFigures {
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "model {}, training data {} ({} windows); the {} rule",
            self.model, self.train_data, self.train_windows, self.rule
        );
        let _ = writeln!(
            text,
            "CPU: 106-step generation {:.2} ms ({:.2} ms with the network's copy kept, 8 \
             variations {:.2} ms{}), {:.3} ms per step ({}); training {:.0} {} at batch 32 \
             with its defaults",
            self.generate_ms_cpu,
            self.generate_kept_ms_cpu,
            self.generate8_ms_cpu,
            self.generate_one_of_8_ms_cpu
                .map_or_else(String::new, |one| format!(
                    " with the {} rule, {one:.2} ms for one with it",
                    self.variations_rule
                )),
            self.step_ms_cpu,
            self.generate_ms_cpu_burn.map_or_else(
                || "its plain-Rust copy only".to_owned(),
                |ms| format!("through burn flex: {ms:.2} ms")
            ),
            self.train_windows_per_s_cpu,
            self.train_unit
        );
        if let Some(fill) = self.fill32_ms_cpu {
            let _ = writeln!(text, "CPU: 32-step fill from both sides {fill:.2} ms");
        }
        let _ = writeln!(text, "Training at batch 32:");
        for figure in &self.training {
            let _ = writeln!(
                text,
                "  {:<8} {:>9.0} {:<17} {} on {}{}",
                figure.network,
                figure.per_s,
                figure.unit,
                figure.engine,
                figure.device,
                if figure.settings.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", figure.settings)
                }
            );
        }
        match (
            &self.gpu,
            self.generate_ms_gpu,
            self.generate8_ms_gpu,
            self.train_windows_per_s_gpu,
        ) {
            (Some(gpu), Some(one), Some(eight), Some(train)) => {
                let _ = writeln!(
                    text,
                    "GPU {gpu}: 106-step generation {one:.2} ms (8 variations {eight:.2} ms), \
                     {:.3} ms per step; training {train:.0} {} at batch 32",
                    one / 106.0,
                    self.train_unit
                );
            }
            _ => {
                let _ = writeln!(text, "GPU: none measured (no real GPU adapter)");
            }
        }
        text
    }
}

/// Runs `f` at least `min_runs` times and for at least `min_time`, after two
/// warm-up runs; returns the median run in milliseconds.
fn median_ms(
    min_runs: usize,
    min_time: Duration,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    f()?;
    f()?;
    let mut runs = Vec::new();
    let started = Instant::now();
    while runs.len() < min_runs || started.elapsed() < min_time {
        let run = Instant::now();
        f()?;
        runs.push(run.elapsed().as_secs_f64() * 1e3);
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[runs.len() / 2])
}

struct DeviceFigures {
    generate_ms: f64,
    generate_kept_ms: f64,
    fill32_ms: Option<f64>,
    /// Through burn even where generation would use the native copy.
    generate_burn_ms: Option<f64>,
    generate8_ms: f64,
    generate_one_of_8_ms: Option<f64>,
    train_windows_per_s: f64,
}

fn measure(
    selected: &SelectedDevice,
    checkpoint: Option<&crate::checkpoint::Checkpoint>,
    seed_roll: &PianoRoll,
    data: &Dataset,
) -> anyhow::Result<DeviceFigures> {
    let window = &seed_window(seed_roll, 0)?;
    let device = &selected.device;
    let model: Network = match checkpoint {
        Some(checkpoint) => checkpoint.model(device)?,
        None => Network::Article(ArticleNetConfig::article().init(device)),
    };
    let (own, of_variations) = rules(model.architecture());
    let options = |rule: RuleKind, variations: usize| GenerateOptions {
        variations,
        rule: RuleSettings {
            kind: rule,
            ..RuleSettings::default()
        }
        .rule(),
        ..GenerateOptions::default()
    };
    let time_generation = |rule: RuleKind, variations: usize| {
        let options = options(rule, variations);
        median_ms(5, Duration::from_secs(1), || {
            generate_on(&model, selected, window, &options)?;
            Ok(())
        })
    };
    let generate_ms = time_generation(own, 1)?;
    let runner = Runner::new(&model, selected)?;
    let generate_kept_ms = median_ms(5, Duration::from_secs(1), || {
        generate_with(runner.predictor().as_mut(), window, &options(own, 1))?;
        Ok(())
    })?;
    let generate8_ms = time_generation(of_variations, 8)?;
    let generate_one_of_8_ms = if of_variations == own {
        None
    } else {
        Some(time_generation(of_variations, 1)?)
    };
    let through_burn = SelectedDevice {
        native_inference: false,
        ..selected.clone()
    };
    let generate_burn_ms = match model.architecture() {
        Architecture::Composer => None,
        _ => Some(median_ms(5, Duration::from_secs(1), || {
            generate_on(&model, &through_burn, window, &options(own, 1))?;
            Ok(())
        })?),
    };
    let fill32_ms = match model.architecture() {
        Architecture::Composer => Some(median_ms(5, Duration::from_secs(1), || {
            let request = Fill {
                range: 32..64,
                meter: seed_roll.meta().meter(),
                constraints: Constraints::default(),
                options: GenerateOptions {
                    steps: 32,
                    ..options(own, 1)
                },
            };
            fill(&model, selected, seed_roll, &request, &|| false)?;
            Ok(())
        })?),
        _ => None,
    };
    let (train_windows_per_s, _) = training_rate(model.architecture(), data, device, false, false)?;
    Ok(DeviceFigures {
        generate_ms,
        generate_kept_ms,
        fill32_ms,
        generate_burn_ms,
        generate8_ms,
        generate_one_of_8_ms,
        train_windows_per_s,
    })
}

/// The rule a network of `architecture` generates with, and the one its
/// variations are drawn with: the same where it draws at random, else
/// sampling (variations of the others would be one roll repeated).
fn rules(architecture: Architecture) -> (RuleKind, RuleKind) {
    let own = RuleKind::default_for(architecture);
    let of_variations = if own.draws_at_random() {
        own
    } else {
        RuleKind::Sample
    };
    (own, of_variations)
}

/// Predicted steps per second training `architecture` on `data`, for at
/// least 3 seconds: with its default settings, or with `peer_settings` those
/// the peer script uses (no feedback); on burn when `on_burn`.
fn training_rate(
    architecture: Architecture,
    data: &Dataset,
    device: &burn::tensor::Device,
    peer_settings: bool,
    on_burn: bool,
) -> anyhow::Result<(f64, TrainingEngine)> {
    let mut settings = train::default_settings(architecture);
    if peer_settings {
        settings.feedback = 0.0;
    }
    let mut trainer = Trainer::new(
        architecture.default_config(),
        settings,
        data,
        "bench",
        device,
    )?;
    if on_burn {
        trainer = trainer.on_burn()?;
    }
    let engine = trainer.engine();
    trainer.targets_per_second(data, 3)?;
    let mut batches = 20;
    Ok(loop {
        let started = Instant::now();
        let rate = trainer.targets_per_second(data, batches)?;
        if started.elapsed() >= Duration::from_secs(3) || batches >= 10_000 {
            break (rate, engine);
        }
        batches *= 2;
    })
}

/// Every network's training throughput on `selected`, as the peers measure
/// it (plus the roll LSTM with its feedback), on each engine that runs there.
fn training_figures(
    selected: &SelectedDevice,
    data: &Dataset,
) -> anyhow::Result<Vec<TrainingFigure>> {
    let device_name = if selected.is_gpu() {
        selected.label.clone()
    } else {
        "cpu".to_owned()
    };
    let mut figures = Vec::new();
    for (architecture, network) in [
        (Architecture::Article, "article"),
        (Architecture::RollLstm, "roll"),
        (Architecture::Composer, "composer"),
    ] {
        let unit = architecture.training_unit();
        let mut runs = vec![(true, false)];
        if architecture == Architecture::RollLstm {
            runs.push((false, false));
        }
        if !selected.is_gpu() {
            runs.push((true, true));
        }
        for (peer_settings, on_burn) in runs {
            let (per_s, engine) =
                training_rate(architecture, data, &selected.device, peer_settings, on_burn)?;
            figures.push(TrainingFigure {
                network,
                parameters: architecture.default_config().param_count(),
                unit,
                engine: engine.label(),
                device: device_name.clone(),
                settings: if architecture == Architecture::RollLstm && !peer_settings {
                    "its defaults: a quarter of the input steps fed back"
                } else if architecture == Architecture::RollLstm {
                    "no feedback, as the peer"
                } else {
                    ""
                },
                per_s,
            });
        }
    }
    Ok(figures)
}

pub fn bench_model(
    data_dir: Option<&Path>,
    model: Option<&str>,
    software_gpu: bool,
) -> anyhow::Result<ModelFigures> {
    let (checkpoint, model_name) = match open_model(model) {
        Ok((checkpoint, name)) => (Some(checkpoint), name),
        Err(error) if model.is_none() => {
            eprintln!("note: no shipped model ({error}); timing a freshly initialised network");
            (None, "article's network, untrained".to_owned())
        }
        Err(error) => return Err(error.into()),
    };
    let (data, train_data) = match data_dir {
        Some(dir) => (
            Dataset::from_folder(dir, &LoadOptions::default(), Preset::Forward, 0.0, 0)?,
            dir.display().to_string(),
        ),
        None => {
            let rolls = DEMO_ROLLS
                .iter()
                .map(|demo| {
                    import(demo.midi, &ImportOptions::default())
                        .map(|(roll, _)| roll.sounding_masks().to_vec())
                })
                .collect::<Result<Vec<_>, _>>()?;
            (
                Dataset::from_rolls(rolls, Preset::Forward, 0.0, 0)?,
                "the shipped demo rolls".to_owned(),
            )
        }
    };
    let architecture = checkpoint
        .as_ref()
        .map_or(Architecture::Article, |c| c.header.network.architecture());
    let (own_rule, variations_rule) = rules(architecture);
    let demo = crate::assets::default_demo();
    let (seed_roll, _) = import(demo.midi, &ImportOptions::default())?;
    let cpu = measure(
        &device::cpu_selected(None),
        checkpoint.as_ref(),
        &seed_roll,
        &data,
    )?;
    let mut training = training_figures(&device::cpu_selected(None), &data)?;
    let gpu_device = match device::select(BackendChoice::Gpu) {
        Ok(selected) if selected.notice.is_none() || software_gpu => Some(selected),
        _ => None,
    };
    let gpu = match &gpu_device {
        Some(selected) => {
            training.extend(training_figures(selected, &data)?);
            Some(measure(selected, checkpoint.as_ref(), &seed_roll, &data)?)
        }
        None => None,
    };
    Ok(ModelFigures {
        generate_ms_cpu: cpu.generate_ms,
        generate_kept_ms_cpu: cpu.generate_kept_ms,
        generate_ms_cpu_burn: cpu.generate_burn_ms,
        generate8_ms_cpu: cpu.generate8_ms,
        generate_one_of_8_ms_cpu: cpu.generate_one_of_8_ms,
        rule: own_rule.name(),
        variations_rule: variations_rule.name(),
        fill32_ms_cpu: cpu.fill32_ms,
        step_ms_cpu: cpu.generate_ms / 106.0,
        train_windows_per_s_cpu: cpu.train_windows_per_s,
        train_unit: architecture.training_unit(),
        training,
        generate_ms_gpu: gpu.as_ref().map(|g| g.generate_ms),
        generate8_ms_gpu: gpu.as_ref().map(|g| g.generate8_ms),
        step_ms_gpu: gpu.as_ref().map(|g| g.generate_ms / 106.0),
        train_windows_per_s_gpu: gpu.as_ref().map(|g| g.train_windows_per_s),
        gpu: gpu_device.map(|selected| selected.label),
        model: model_name,
        train_data,
        train_windows: data.report().windows_train,
    })
}
