//! Measuring the model in use from the app: `cadenza eval`'s figures for the
//! rule, parameters and length set in the controls, on a worker.

use std::path::PathBuf;

use super::generation::LoadedModel;
use super::jobs::{Waker, Worker, WorkerEnd};
use crate::device;
use crate::eval::{Evaluation, evaluate, held_out_data};
use crate::files::LoadOptions;
use crate::generate::{GenerateOptions, Runner};

/// Continuations start at every this many held-out windows, as `cadenza
/// eval`'s default.
const STRIDE: usize = 16;

/// What a finished measurement shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub model: String,
    pub rule: String,
    pub held_out_files: usize,
    pub evaluation: Evaluation,
}

/// The whole measurement, on the worker.
fn measure(
    model: &LoadedModel,
    dir: &std::path::Path,
    options: GenerateOptions,
) -> Result<Measurement, String> {
    let checkpoint = &model.checkpoint;
    let data = held_out_data(&checkpoint.header, dir, &LoadOptions::default(), false)
        .map_err(|e| e.to_string())?;
    let network = checkpoint
        .model(&device::cpu())
        .map_err(|e| e.to_string())?;
    let runner = Runner::new(&network, &device::cpu_selected(None)).map_err(|e| e.to_string())?;
    let options = GenerateOptions {
        variations: 1,
        ..options
    };
    let evaluation = evaluate(runner.predictor().as_mut(), &data, &options, STRIDE, None)
        .map_err(|e| e.to_string())?;
    Ok(Measurement {
        model: model.name.clone(),
        rule: format!("{:?}", options.rule),
        held_out_files: data.report().files_validation,
        evaluation,
    })
}

/// Measuring's state: the folder typed, and the last measurement.
#[derive(Debug, Default)]
pub struct Measuring {
    pub folder: String,
    run: Option<Worker<Result<Measurement, String>>>,
    outcome: Option<Result<Measurement, String>>,
}

impl Measuring {
    /// Scores `model` on the files of the folder it was not trained on,
    /// continuing with `options`.
    pub fn start(
        &mut self,
        model: &LoadedModel,
        options: GenerateOptions,
        wake: Waker,
    ) -> Result<(), String> {
        let folder = self.folder.trim();
        if folder.is_empty() {
            return Err("choose a folder of MIDI/PNG files to measure on".to_owned());
        }
        let (model, dir) = (model.clone(), PathBuf::from(folder));
        self.outcome = None;
        self.run = Some(Worker::spawn("measuring", wake, move |outbox| {
            outbox.send(measure(&model, &dir, options));
        }));
        Ok(())
    }

    /// Takes the result if it has come; returns a message when it just did.
    pub fn poll(&mut self) -> Option<String> {
        let run = self.run.as_mut()?;
        let outcome = run.poll().into_iter().next().or_else(|| {
            run.ended().map(|end| match end {
                WorkerEnd::Returned => Err("measuring stopped without a result".to_owned()),
                WorkerEnd::Failed(reason) => Err(format!("measuring failed: {reason}")),
            })
        })?;
        self.run = None;
        let message = match &outcome {
            Ok(m) => format!(
                "measured {} on {} held-out files",
                m.model, m.held_out_files
            ),
            Err(error) => error.clone(),
        };
        self.outcome = Some(outcome);
        Some(message)
    }

    /// The last measurement: `None` before one, `Some(None)` while running.
    pub fn measurement(&self) -> Option<Option<&Result<Measurement, String>>> {
        if self.run.is_some() {
            return Some(None);
        }
        self.outcome.as_ref().map(Some)
    }
}
