//! The seed network of the article, exactly: Conv1D (kernel 1) + max-pool
//! stages over the 9-step window, two LSTMs, batch norm and a sigmoid layer
//! that predicts the next step's 106 pitches. 251,370 parameters.
//!
//! Keras wraps the convolutions in `TimeDistributed` over an outer time axis of
//! length 1 and runs the LSTMs over that axis; here the outer axis is left out
//! of the input (`[batch, 9, 106]`) and the LSTMs run over a sequence of one, so
//! the arithmetic is the same. The model never names a backend: tensors live on
//! whatever [`Device`] the caller built it on (see `device`).

mod lstm;
pub mod native;
pub mod recurrent;
pub mod summary;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

pub use lstm::{KerasLstm, LstmState};
pub use recurrent::{RollLstm, RollLstmConfig};

/// Steps in the input window.
pub const WINDOW_STEPS: usize = 9;

/// The seed network's shape. The defaults are the article's.
#[derive(Config, Debug, PartialEq)]
pub struct SeedModelConfig {
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

impl SeedModelConfig {
    /// The article's network.
    pub fn seed() -> Self {
        Self::new()
    }

    /// Builds the network with Keras's initialisation (Glorot-uniform kernels,
    /// zero biases, unit forget bias, orthogonal recurrent kernels).
    pub fn init(&self, device: &Device) -> SeedModel {
        let conv = |d_input: usize| {
            LinearConfig::new(d_input, self.filters)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
                .map_bias_to_zero(device)
        };
        SeedModel {
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

impl Default for SeedModelConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The kinds of network Cadenza trains and runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Architecture {
    /// The article's Conv1D + LSTM over a 9-step window.
    Seed,
    /// An LSTM over the steps with its state carried along (Cadenza's own).
    #[default]
    RollLstm,
}

impl Architecture {
    /// The name model files give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Seed => SEED_ARCHITECTURE,
            Self::RollLstm => ROLL_LSTM_ARCHITECTURE,
        }
    }

    /// This architecture with its default shape.
    pub fn default_config(self) -> NetworkConfig {
        match self {
            Self::Seed => NetworkConfig::Seed(SeedModelConfig::seed()),
            Self::RollLstm => NetworkConfig::RollLstm(RollLstmConfig::new()),
        }
    }
}

/// What model files call the seed network.
pub const SEED_ARCHITECTURE: &str = "seed-conv1d-lstm";
/// What model files call the roll LSTM.
pub const ROLL_LSTM_ARCHITECTURE: &str = "roll-lstm";
/// Every architecture this build reads.
pub const KNOWN_ARCHITECTURES: [&str; 2] = [SEED_ARCHITECTURE, ROLL_LSTM_ARCHITECTURE];

/// A network's architecture and shape, as model files store them: the
/// architecture's name beside its config.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "architecture", content = "config")]
pub enum NetworkConfig {
    #[serde(rename = "seed-conv1d-lstm")]
    Seed(SeedModelConfig),
    #[serde(rename = "roll-lstm")]
    RollLstm(RollLstmConfig),
}

impl NetworkConfig {
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Seed(_) => Architecture::Seed,
            Self::RollLstm(_) => Architecture::RollLstm,
        }
    }

    /// Why this shape cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Seed(_) => None,
            Self::RollLstm(config) => config.problem(),
        }
    }

    /// Builds the network with fresh (seeded) weights.
    pub fn init(&self, device: &Device) -> Network {
        match self {
            Self::Seed(config) => Network::Seed(config.init(device)),
            Self::RollLstm(config) => Network::RollLstm(config.init(device)),
        }
    }
}

impl From<SeedModelConfig> for NetworkConfig {
    fn from(config: SeedModelConfig) -> Self {
        Self::Seed(config)
    }
}

impl From<RollLstmConfig> for NetworkConfig {
    fn from(config: RollLstmConfig) -> Self {
        Self::RollLstm(config)
    }
}

/// A network of any architecture. (The seed variant is the larger one; a
/// process holds a network or two, and burn's derive does not box.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Network {
    Seed(SeedModel),
    RollLstm(RollLstm),
}

impl Network {
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Seed(_) => Architecture::Seed,
            Self::RollLstm(_) => Architecture::RollLstm,
        }
    }

    /// Pitches per step the network reads and predicts.
    pub fn pitches(&self) -> usize {
        match self {
            Self::Seed(model) => model.pitches(),
            Self::RollLstm(model) => model.pitches(),
        }
    }

    /// The seed network, if this is one.
    pub fn into_seed(self) -> Option<SeedModel> {
        match self {
            Self::Seed(model) => Some(model),
            Self::RollLstm(_) => None,
        }
    }
}

impl From<SeedModel> for Network {
    fn from(model: SeedModel) -> Self {
        Self::Seed(model)
    }
}

/// Keras's Conv1D and Dense start with zero biases; burn's Linear draws them.
trait ZeroBias {
    fn map_bias_to_zero(self, device: &Device) -> Self;
}

impl ZeroBias for Linear {
    fn map_bias_to_zero(mut self, device: &Device) -> Self {
        if let Some(bias) = &self.bias {
            let [n] = bias.dims();
            self.bias = Some(Initializer::Zeros.init([n], device));
        }
        self
    }
}

/// The seed network. Field names carry the Keras layer index they mirror.
#[derive(Module, Debug)]
pub struct SeedModel {
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

impl SeedModel {
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
