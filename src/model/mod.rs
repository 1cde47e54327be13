//! The networks: the article's ([`article`]), exact to the Keras reference,
//! Cadenza's roll LSTM ([`recurrent`]) and its composer ([`composer`]); their configs as model files
//! store them, and [`Network`], either of them. Model code never names a
//! backend: tensors live on whatever [`Device`] the caller built the network
//! on (see `device`).

mod activations;
pub mod article;
pub mod composer;
mod lstm;
pub mod native;
pub mod recurrent;
pub(crate) mod split;
pub mod summary;

use burn::module::Module;
use burn::nn::{Initializer, Linear};
use burn::tensor::Device;

pub use article::{Activations, ArticleNet, ArticleNetConfig};
pub use composer::{Composer, ComposerConfig};
pub use lstm::{KerasLstm, LstmState};
pub use recurrent::{RollLstm, RollLstmConfig};

/// Steps in the input window.
pub const WINDOW_STEPS: usize = 9;

/// The kinds of network Cadenza trains and runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Architecture {
    /// The article's Conv1D + LSTM over a 9-step window.
    #[value(alias = "seed")]
    Article,
    /// An LSTM over the steps with its state carried along (Cadenza's own).
    #[default]
    RollLstm,
    /// The roll's steps as chords (a NADE output over an LSTM), with the
    /// beat and the music after a gap (Cadenza's composing model).
    Composer,
}

impl Architecture {
    /// The name model files give it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Article => ARTICLE_ARCHITECTURE,
            Self::RollLstm => ROLL_LSTM_ARCHITECTURE,
            Self::Composer => COMPOSER_ARCHITECTURE,
        }
    }

    /// What its training throughput counts: windows for the article's
    /// network, every predicted step of the stretches for the others.
    pub fn training_unit(self) -> &'static str {
        match self {
            Self::Article => "windows/s",
            Self::RollLstm | Self::Composer => "predicted steps/s",
        }
    }

    /// Whether it hears the music after a gap, and so can fill one.
    pub fn fills(self) -> bool {
        self == Self::Composer
    }

    /// This architecture with its default shape.
    pub fn default_config(self) -> NetworkConfig {
        match self {
            Self::Article => NetworkConfig::Article(ArticleNetConfig::article()),
            Self::RollLstm => NetworkConfig::RollLstm(RollLstmConfig::new()),
            Self::Composer => NetworkConfig::Composer(
                ComposerConfig::new()
                    .with_near_after(Some(true))
                    .with_pitch_profile(Some(true))
                    .with_key_input(Some(true)),
            ),
        }
    }
}

/// What model files call the article's network (the name predates the
/// "article" wording in the code; files keep it).
pub const ARTICLE_ARCHITECTURE: &str = "seed-conv1d-lstm";
/// What model files call the roll LSTM.
pub const ROLL_LSTM_ARCHITECTURE: &str = "roll-lstm";
/// What model files call the composer.
pub const COMPOSER_ARCHITECTURE: &str = "composer";
/// Every architecture this build reads.
pub const KNOWN_ARCHITECTURES: [&str; 3] = [
    ARTICLE_ARCHITECTURE,
    ROLL_LSTM_ARCHITECTURE,
    COMPOSER_ARCHITECTURE,
];

/// A network's architecture and shape, as model files store them: the
/// architecture's name beside its config.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "architecture", content = "config")]
pub enum NetworkConfig {
    #[serde(rename = "seed-conv1d-lstm")]
    Article(ArticleNetConfig),
    #[serde(rename = "roll-lstm")]
    RollLstm(RollLstmConfig),
    #[serde(rename = "composer")]
    Composer(ComposerConfig),
}

impl NetworkConfig {
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Article(_) => Architecture::Article,
            Self::RollLstm(_) => Architecture::RollLstm,
            Self::Composer(_) => Architecture::Composer,
        }
    }

    /// Why this shape cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Article(config) => config.problem(),
            Self::RollLstm(config) => config.problem(),
            Self::Composer(config) => config.problem(),
        }
    }

    /// Number of parameters (and batch-norm statistics) of this shape,
    /// counted without building it.
    pub fn param_count(&self) -> usize {
        match self {
            Self::Article(config) => config.param_count(),
            Self::RollLstm(config) => config.param_count(),
            Self::Composer(config) => config.param_count(),
        }
    }

    /// Builds the network with fresh (seeded) weights.
    pub fn init(&self, device: &Device) -> Network {
        match self {
            Self::Article(config) => Network::Article(config.init(device)),
            Self::RollLstm(config) => Network::RollLstm(config.init(device)),
            Self::Composer(config) => Network::Composer(config.init(device)),
        }
    }
}

impl From<ArticleNetConfig> for NetworkConfig {
    fn from(config: ArticleNetConfig) -> Self {
        Self::Article(config)
    }
}

impl From<RollLstmConfig> for NetworkConfig {
    fn from(config: RollLstmConfig) -> Self {
        Self::RollLstm(config)
    }
}

impl From<ComposerConfig> for NetworkConfig {
    fn from(config: ComposerConfig) -> Self {
        Self::Composer(config)
    }
}

/// A network of any architecture. (The article variant is the larger one; a
/// process holds a network or two, and burn's derive does not box.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Network {
    Article(ArticleNet),
    RollLstm(RollLstm),
    Composer(Composer),
}

impl Network {
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Article(_) => Architecture::Article,
            Self::RollLstm(_) => Architecture::RollLstm,
            Self::Composer(_) => Architecture::Composer,
        }
    }

    /// Pitches per step the network reads and predicts.
    pub fn pitches(&self) -> usize {
        match self {
            Self::Article(model) => model.pitches(),
            Self::RollLstm(model) => model.pitches(),
            Self::Composer(model) => model.pitches(),
        }
    }

    /// The article's network, if this is one.
    pub fn into_article(self) -> Option<ArticleNet> {
        match self {
            Self::Article(model) => Some(model),
            Self::RollLstm(_) | Self::Composer(_) => None,
        }
    }
}

impl From<ArticleNet> for Network {
    fn from(model: ArticleNet) -> Self {
        Self::Article(model)
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
