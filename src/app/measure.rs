//! Measuring the model in use from the app: `cadenza eval`'s figures for the
//! rule, parameters and length set in the controls, on a worker thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use crate::checkpoint::Checkpoint;
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

/// A measurement in the background.
#[derive(Debug)]
pub struct MeasureRun {
    result: Receiver<Result<Measurement, String>>,
    outcome: Option<Result<Measurement, String>>,
}

impl MeasureRun {
    /// Scores `checkpoint` on the files of `dir` it was not trained on,
    /// continuing with `options`; `wake` is called when it is done.
    pub fn start(
        checkpoint: Checkpoint,
        model: String,
        dir: PathBuf,
        options: GenerateOptions,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        let (tx, result) = channel();
        std::thread::spawn(move || {
            let measured = (|| -> Result<Measurement, String> {
                let data = held_out_data(&checkpoint.header, &dir, &LoadOptions::default(), false)
                    .map_err(|e| e.to_string())?;
                let network = checkpoint
                    .model(&device::cpu())
                    .map_err(|e| e.to_string())?;
                let runner = Runner::new(&network, &device::cpu_selected(None))
                    .map_err(|e| e.to_string())?;
                let options = GenerateOptions {
                    variations: 1,
                    ..options
                };
                let evaluation = evaluate(runner.predictor().as_mut(), &data, &options, STRIDE)
                    .map_err(|e| e.to_string())?;
                Ok(Measurement {
                    model,
                    rule: format!("{:?}", options.rule),
                    held_out_files: data.report().files_validation,
                    evaluation,
                })
            })();
            let _ = tx.send(measured);
            wake();
        });
        Self {
            result,
            outcome: None,
        }
    }

    /// Takes the result if it has come.
    pub fn poll(&mut self) {
        if self.outcome.is_none()
            && let Ok(outcome) = self.result.try_recv()
        {
            self.outcome = Some(outcome);
        }
    }

    /// The figures, or why there are none; `None` while measuring.
    pub fn outcome(&self) -> Option<&Result<Measurement, String>> {
        self.outcome.as_ref()
    }
}
