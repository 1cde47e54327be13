//! Model files: the network's config, its weights, optionally the optimizer
//! state, and the training log, in one file written atomically.
//!
//! Layout (little-endian): the magic `CADENZA\0`, a format version (u32), then
//! three length-prefixed (u64) sections: a JSON header, the weights (burnpack)
//! and the optimizer state (burnpack, empty when absent), and a CRC-32 of
//! everything before it. The lengths tell a truncated file from a corrupt one,
//! and the header's architecture tells a model of another kind from both.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomically;
use crate::model::{KNOWN_ARCHITECTURES, Network, NetworkConfig};
use crate::record::TrainingRecord;

const MAGIC: &[u8; 8] = b"CADENZA\0";
const FORMAT_VERSION: u32 = 1;

/// Why a model file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a Cadenza model file (it does not start with the Cadenza signature)")]
    NotACheckpoint,
    #[error("model file format {found} is newer than this Cadenza reads ({FORMAT_VERSION})")]
    NewerFormat { found: u32 },
    #[error("the model file is truncated: {section} needs {needed} bytes, {available} remain")]
    Truncated {
        section: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("the model file is corrupt: its checksum does not match its contents")]
    Corrupt,
    #[error("the model file's header is unreadable: {0}")]
    Header(String),
    #[error(
        "the model file holds a `{found}` network, but this Cadenza runs only {}",
        KNOWN_ARCHITECTURES.map(|a| format!("`{a}`")).join(" and ")
    )]
    OtherArchitecture { found: String },
    #[error("the weights do not fit the network the header describes: {0}")]
    Weights(String),
    /// The header claims a network larger than the weights the file holds:
    /// refused before anything of that size is built.
    #[error(
        "the header describes a network of {params} parameters ({needed} bytes of weights), \
         but the file holds {found} bytes of weights"
    )]
    ShapeMismatch {
        params: usize,
        needed: u64,
        found: u64,
    },
}

/// What a model file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointHeader {
    /// The architecture and its shape (`"architecture"` and `"config"` keys).
    #[serde(flatten)]
    pub network: NetworkConfig,
    /// Where the weights came from, for people reading `cadenza model info`.
    pub origin: String,
    /// Settings, progress and loss history of the training that made it.
    pub training: Option<TrainingRecord>,
    pub cadenza_version: String,
}

impl CheckpointHeader {
    /// The threshold the model's training found best (validation F1), if
    /// its training recorded one.
    /// The grid the network was trained on, when the file says.
    pub fn steps_per_quarter(&self) -> Option<u8> {
        self.training.as_ref().map(|t| t.settings.steps_per_quarter)
    }

    pub fn tuned_threshold(&self) -> Option<f32> {
        self.training.as_ref()?.tuned_threshold()
    }

    pub fn new(network: impl Into<NetworkConfig>, origin: impl Into<String>) -> Self {
        Self {
            network: network.into(),
            origin: origin.into(),
            training: None,
            cadenza_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// A model file in memory.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub header: CheckpointHeader,
    weights: Vec<u8>,
    optimizer: Option<Vec<u8>>,
}

fn record_error(error: impl std::fmt::Debug) -> CheckpointError {
    CheckpointError::Weights(format!("{error:?}"))
}

impl Checkpoint {
    /// Captures `network`'s weights (and batch-norm statistics); `header`
    /// must describe it.
    pub fn new(header: CheckpointHeader, network: &Network) -> Result<Self, CheckpointError> {
        if network.architecture() != header.network.architecture() {
            return Err(CheckpointError::Weights(format!(
                "the header describes a {} network, the weights are of a {}",
                header.network.architecture().name(),
                network.architecture().name()
            )));
        }
        Ok(Self {
            header,
            weights: weights_of(network)?,
            optimizer: None,
        })
    }

    /// Adds the optimizer state (burnpack bytes), so training can resume.
    pub fn with_optimizer(mut self, optimizer: Vec<u8>) -> Self {
        self.optimizer = Some(optimizer);
        self
    }

    /// Drops the optimizer state: what a shipped model needs.
    pub fn without_optimizer(mut self) -> Self {
        self.optimizer = None;
        self
    }

    /// The optimizer state, when the file has one.
    pub fn optimizer_state(&self) -> Option<&[u8]> {
        self.optimizer.as_deref()
    }

    /// Builds the network on `device` and loads the weights into it.
    pub fn model(&self, device: &Device) -> Result<Network, CheckpointError> {
        network_from_weights(&self.header.network, &self.weights, device)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let header = serde_json::to_vec_pretty(&self.header)
            .map_err(|e| CheckpointError::Header(e.to_string()))?;
        let optimizer = self.optimizer.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(
            MAGIC.len() + 4 + 3 * 8 + header.len() + self.weights.len() + optimizer.len() + 4,
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for section in [header.as_slice(), &self.weights, optimizer] {
            out.extend_from_slice(&(section.len() as u64).to_le_bytes());
            out.extend_from_slice(section);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Parses a model file, checking its signature, length, checksum and
    /// architecture (the weights are checked by [`model`](Self::model)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(CheckpointError::NotACheckpoint);
        }
        let mut reader = SectionReader {
            bytes,
            at: MAGIC.len(),
        };
        let version = u32::from_le_bytes(reader.take_array("format version")?);
        if version > FORMAT_VERSION {
            return Err(CheckpointError::NewerFormat { found: version });
        }
        let header = reader.take_section("header")?;
        let weights = reader.take_section("weights")?;
        let optimizer = reader.take_section("optimizer state")?;
        let body_end = reader.at;
        let crc = u32::from_le_bytes(reader.take_array("checksum")?);
        if crc32fast::hash(&bytes[..body_end]) != crc {
            return Err(CheckpointError::Corrupt);
        }
        let header: CheckpointHeader = serde_json::from_slice(header).map_err(|e| {
            // Tell "another kind of model" from "broken header" where we can.
            match serde_json::from_slice::<serde_json::Value>(header)
                .ok()
                .and_then(|v| v.get("architecture")?.as_str().map(str::to_owned))
            {
                Some(found) if !KNOWN_ARCHITECTURES.contains(&found.as_str()) => {
                    CheckpointError::OtherArchitecture { found }
                }
                _ => CheckpointError::Header(e.to_string()),
            }
        })?;
        check_shape(&header, weights.len())?;
        Ok(Self {
            header,
            weights: weights.to_vec(),
            optimizer: (!optimizer.is_empty()).then(|| optimizer.to_vec()),
        })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Writes the model file atomically (a temp file renamed over `path`).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        write_atomically(path, &self.to_bytes()?).map_err(|source| CheckpointError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// `network`'s weights as a model file's weights section holds them: the
/// variant's own record, so files do not depend on the enum.
pub fn weights_of(network: &Network) -> Result<Vec<u8>, CheckpointError> {
    let weights = match network {
        Network::Article(model) => model.clone().into_record().into_bytes(),
        Network::RollLstm(model) => model.clone().into_record().into_bytes(),
        Network::Composer(model) => model.clone().into_record().into_bytes(),
    }
    .map_err(record_error)?;
    Ok(weights.to_vec())
}

/// Builds a network of `config` on `device` with the weights `weights` (as
/// [`weights_of`] writes them).
pub fn network_from_weights(
    config: &NetworkConfig,
    weights: &[u8],
    device: &Device,
) -> Result<Network, CheckpointError> {
    if let Some(problem) = config.problem() {
        return Err(CheckpointError::Header(problem));
    }
    let record =
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights.to_vec())).map_err(record_error)?;
    Ok(match config.init(device) {
        Network::Article(model) => {
            Network::Article(model.try_load_record(record).map_err(record_error)?)
        }
        Network::RollLstm(model) => {
            Network::RollLstm(model.try_load_record(record).map_err(record_error)?)
        }
        Network::Composer(model) => {
            Network::Composer(model.try_load_record(record).map_err(record_error)?)
        }
    })
}

/// Checks the shape a header claims against the weights the file holds,
/// before a network of that shape is built: every parameter is an f32.
fn check_shape(header: &CheckpointHeader, weight_bytes: usize) -> Result<(), CheckpointError> {
    if let Some(problem) = header.network.problem() {
        return Err(CheckpointError::Header(problem));
    }
    let params = header.network.param_count();
    let needed = params as u64 * 4;
    let found = weight_bytes as u64;
    if found < needed {
        return Err(CheckpointError::ShapeMismatch {
            params,
            needed,
            found,
        });
    }
    Ok(())
}

/// Reads the length-prefixed sections, reporting truncation by name.
struct SectionReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> SectionReader<'a> {
    fn take(&mut self, section: &'static str, needed: u64) -> Result<&'a [u8], CheckpointError> {
        let available = (self.bytes.len() - self.at) as u64;
        if needed > available {
            return Err(CheckpointError::Truncated {
                section,
                needed,
                available,
            });
        }
        let start = self.at;
        self.at += needed as usize;
        Ok(&self.bytes[start..self.at])
    }

    fn take_array<const N: usize>(
        &mut self,
        section: &'static str,
    ) -> Result<[u8; N], CheckpointError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(section, N as u64)?);
        Ok(array)
    }

    fn take_section(&mut self, section: &'static str) -> Result<&'a [u8], CheckpointError> {
        let length = u64::from_le_bytes(self.take_array(section)?);
        self.take(section, length)
    }
}
