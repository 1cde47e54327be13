//! The roll LSTM: Cadenza's own network, built to fix what the measurements
//! show is wrong with the article's. It reads the roll one step at a time and
//! carries an LSTM state across steps, so its context is everything it has
//! heard (the article's is 9 steps, seen by its LSTMs as a sequence of one), no
//! step is dropped on the way in, and it is trained with binary
//! cross-entropy on every step of long stretches (one example per step, not
//! per window). Generation continues the state a step at a time.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use super::ZeroBias as _;
use super::lstm::{KerasLstm, LstmState};

/// The roll LSTM's shape.
#[derive(Config, Debug, PartialEq)]
pub struct RollLstmConfig {
    /// Pitches per step, in and out (the roll's 106).
    #[config(default = 106)]
    pub pitches: usize,
    /// LSTM units.
    #[config(default = 256)]
    pub units: usize,
    /// Dropout on the LSTM's output while training, `0..1`.
    #[config(default = 0.2)]
    pub dropout: f64,
}

impl Default for RollLstmConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl RollLstmConfig {
    /// Why this shape cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        for (name, value) in [("pitches", self.pitches), ("units", self.units)] {
            if let Err(error) = crate::limits::NETWORK_UNITS.check(value) {
                return Some(format!("{name}: {error}"));
            }
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Some(format!("dropout {} is outside 0..1", self.dropout));
        }
        None
    }

    /// Builds the network (Keras-style initialisation, as the article's). Call
    /// [`problem`](Self::problem) first: a bad dropout panics in burn.
    pub fn init(&self, device: &Device) -> RollLstm {
        RollLstm {
            lstm: KerasLstm::new(self.pitches, self.units, device),
            dropout: DropoutConfig::new(self.dropout.clamp(0.0, 0.99)).init(),
            output: LinearConfig::new(self.units, self.pitches)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
                .map_bias_to_zero(device),
        }
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        4 * self.units * (self.pitches + self.units + 1) + (self.units + 1) * self.pitches
    }
}

/// The roll LSTM: LSTM over steps, dropout, dense sigmoid per step.
#[derive(Module, Debug)]
pub struct RollLstm {
    pub lstm: KerasLstm,
    pub dropout: Dropout,
    pub output: Linear,
}

impl RollLstm {
    /// Logits of the step after each input step, from `state` (zero when
    /// `None`), and the state after the last one.
    /// `steps`: `[batch, time, pitches]` 0/1; returns `[batch, time, pitches]`.
    pub fn logits_from(
        &self,
        steps: Tensor<3>,
        state: Option<LstmState>,
    ) -> (Tensor<3>, Option<LstmState>) {
        self.logits_masked(steps, state, None)
    }

    /// [`logits_from`](Self::logits_from) with recurrent dropout
    /// ([`KerasLstm::forward_masked`]), for training.
    pub fn logits_masked(
        &self,
        steps: Tensor<3>,
        state: Option<LstmState>,
        recurrent_mask: Option<&Tensor<2>>,
    ) -> (Tensor<3>, Option<LstmState>) {
        let (hidden, state) = self.lstm.forward_masked(steps, state, recurrent_mask);
        (self.output.forward(self.dropout.forward(hidden)), state)
    }

    /// Probabilities of the step after each input step, from a zero state.
    pub fn forward(&self, steps: Tensor<3>) -> Tensor<3> {
        sigmoid(self.logits_from(steps, None).0)
    }

    /// Pitches per step the model reads and predicts.
    pub fn pitches(&self) -> usize {
        let [pitches, _] = self.lstm.kernel.dims();
        pitches
    }
}
