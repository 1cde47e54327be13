//! The article's network, exactly: Conv1D (kernel 1) + max-pool stages over
//! the 9-step window, two LSTMs, batch norm and a sigmoid layer that predicts
//! the next step's 106 pitches. 251,370 parameters.
//!
//! Keras wraps the convolutions in `TimeDistributed` over an outer time axis of
//! length 1 and runs the LSTMs over that axis; here the outer axis is left out
//! of the input (`[batch, 9, 106]`) and the LSTMs run over a sequence of one, so
//! the arithmetic is the same.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use super::ZeroBias as _;
use super::lstm::KerasLstm;
use crate::limits;

/// The article's network's shape. The defaults are the article's.
#[derive(Config, Debug, PartialEq)]
pub struct ArticleNetConfig {
    /// Pitches per step, in and out (the roll's 106).
    #[config(default = 106)]
    pub pitches: usize,
    /// Steps in the input window; three halvings must leave one row.
    #[config(default = 9)]
    pub window: usize,
    /// Filters of each Conv1D.
    #[config(default = 128)]
    pub filters: usize,
    /// Units of the first LSTM.
    #[config(default = 128)]
    pub lstm_units: usize,
    /// Units of the second LSTM.
    #[config(default = 64)]
    pub lstm2_units: usize,
    /// Batch-norm epsilon (Keras: 1e-3).
    #[config(default = 1e-3)]
    pub norm_epsilon: f64,
    /// Batch-norm momentum in Keras's sense: moving = m * moving + (1 - m) * batch.
    #[config(default = 0.99)]
    pub norm_momentum: f64,
}

impl ArticleNetConfig {
    /// The article's network.
    pub fn article() -> Self {
        Self::new()
    }

    /// Why this shape cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        for (name, value) in [
            ("pitches", self.pitches),
            ("filters", self.filters),
            ("lstm_units", self.lstm_units),
            ("lstm2_units", self.lstm2_units),
        ] {
            if let Err(error) = limits::NETWORK_UNITS.check(value) {
                return Some(format!("{name}: {error}"));
            }
        }
        if !(8..16).contains(&self.window) {
            return Some(format!(
                "a window of {} steps does not pool to one row (8..=15 do)",
                self.window
            ));
        }
        if !(self.norm_epsilon.is_finite() && self.norm_epsilon > 0.0) {
            return Some(format!(
                "norm_epsilon {} must be above 0",
                self.norm_epsilon
            ));
        }
        if !(0.0..=1.0).contains(&self.norm_momentum) {
            return Some(format!(
                "norm_momentum {} is outside 0..=1",
                self.norm_momentum
            ));
        }
        None
    }

    /// Number of parameters, batch-norm statistics included.
    pub fn param_count(&self) -> usize {
        let linear = |d_in: usize, d_out: usize| d_in * d_out + d_out;
        let lstm = |d_in: usize, units: usize| 4 * units * (d_in + units + 1);
        linear(self.pitches, self.filters)
            + 3 * linear(self.filters, self.filters)
            + lstm(self.filters, self.lstm_units)
            + lstm(self.lstm_units, self.lstm2_units)
            + 4 * self.lstm2_units
            + linear(self.lstm2_units, self.pitches)
    }

    /// Builds the network with Keras's initialisation (Glorot-uniform kernels,
    /// zero biases, unit forget bias, orthogonal recurrent kernels).
    pub fn init(&self, device: &Device) -> ArticleNet {
        let conv = |d_input: usize| {
            LinearConfig::new(d_input, self.filters)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
                .map_bias_to_zero(device)
        };
        ArticleNet {
            conv0: conv(self.pitches),
            conv2: conv(self.filters),
            conv4: conv(self.filters),
            conv6: conv(self.filters),
            lstm8: KerasLstm::new(self.filters, self.lstm_units, device),
            lstm9: KerasLstm::new(self.lstm_units, self.lstm2_units, device),
            norm10: BatchNormConfig::new(self.lstm2_units)
                .with_epsilon(self.norm_epsilon)
                .with_momentum(1.0 - self.norm_momentum)
                .init(device),
            dense11: LinearConfig::new(self.lstm2_units, self.pitches)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
                .map_bias_to_zero(device),
        }
    }
}

impl Default for ArticleNetConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The article's network. Field names carry the Keras layer index they mirror.
#[derive(Module, Debug)]
pub struct ArticleNet {
    /// Conv1D 106 -> 128, kernel 1, relu: a dense layer applied to each step.
    pub conv0: Linear,
    pub conv2: Linear,
    pub conv4: Linear,
    pub conv6: Linear,
    pub lstm8: KerasLstm,
    pub lstm9: KerasLstm,
    pub norm10: BatchNorm,
    pub dense11: Linear,
}

/// Halves the step axis by max-pooling pairs; an odd last step is dropped
/// (Keras `MaxPooling1D(2)`, padding `valid`). `[batch, steps, c]` ->
/// `[batch, steps / 2, c]`.
fn max_pool_pairs(x: Tensor<3>) -> Tensor<3> {
    let [batch, steps, channels] = x.dims();
    let half = steps / 2;
    x.narrow(1, 0, half * 2)
        .reshape([batch, half, 2, channels])
        .max_dim(2)
        .reshape([batch, half, channels])
}

/// Every layer's output for one input, for parity checks and inspection.
#[derive(Debug)]
pub struct Activations {
    /// (Keras layer index and name, output).
    pub layers: Vec<(&'static str, Tensor<2>)>,
}

impl ArticleNet {
    /// Probabilities of each pitch at the next step.
    /// `window`: `[batch, 9, 106]` of 0/1 values; returns `[batch, 106]`.
    pub fn forward(&self, window: Tensor<3>) -> Tensor<2> {
        self.forward_inner(window, &mut |_, _| {})
    }

    /// [`forward`](Self::forward), also returning every layer's output
    /// flattened to `[batch, features]`, named like the Keras layers.
    pub fn forward_with_activations(&self, window: Tensor<3>) -> (Tensor<2>, Activations) {
        let mut layers = Vec::new();
        let output = self.forward_inner(window, &mut |name, tensor| layers.push((name, tensor)));
        (output, Activations { layers })
    }

    fn forward_inner(
        &self,
        window: Tensor<3>,
        record: &mut dyn FnMut(&'static str, Tensor<2>),
    ) -> Tensor<2> {
        let [batch, _, _] = window.dims();
        let mut keep = |name, x: &Tensor<3>| {
            let [b, s, c] = x.dims();
            record(name, x.clone().reshape([b, s * c]));
        };
        let x = relu(self.conv0.forward(window)); // [batch, 9, 128]
        keep("00.time_distributed", &x);
        let x = max_pool_pairs(x); // [batch, 4, 128]
        keep("01.time_distributed_1", &x);
        let x = relu(self.conv2.forward(x));
        keep("02.time_distributed_2", &x);
        let x = max_pool_pairs(x); // [batch, 2, 128]
        keep("03.time_distributed_3", &x);
        let x = relu(self.conv4.forward(x));
        keep("04.time_distributed_4", &x);
        let x = max_pool_pairs(x); // [batch, 1, 128]
        keep("05.time_distributed_5", &x);
        let x = relu(self.conv6.forward(x));
        keep("06.time_distributed_6", &x);
        let [_, steps, filters] = x.dims();
        // Flatten; the outer time axis of length 1 becomes the LSTMs' sequence.
        let x = x.reshape([batch, 1, steps * filters]); // [batch, 1, 128]
        keep("07.time_distributed_7", &x);
        let x = self.lstm8.forward(x); // [batch, 1, 128]
        keep("08.lstm", &x);
        let [_, time, _] = x.dims();
        // The second LSTM returns its last step only.
        let x = self
            .lstm9
            .forward(x)
            .narrow(1, time - 1, 1)
            .reshape([batch, self.lstm9.units]); // [batch, 64]
        record("09.lstm_1", x.clone());
        let x = self.norm10.forward(x);
        record("10.batch_normalization", x.clone());
        let x = sigmoid(self.dense11.forward(x)); // [batch, 106]
        record("11.dense", x.clone());
        x
    }

    /// Pitches per step the model reads and predicts.
    pub fn pitches(&self) -> usize {
        let [pitches, _] = self.conv0.weight.dims();
        pitches
    }
}
