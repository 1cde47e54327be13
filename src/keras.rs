//! Keras weights for the article's network, from a NumPy `.npz` archive.
//!
//! The archive holds one array per weight, named `NN.<layer>.<variable>`: the
//! two-digit Keras layer index, the layer's name (ignored, since Keras numbers
//! names per session: `lstm_3` is as good as `lstm`), and the variable
//! (`kernel`, `recurrent_kernel`, `bias`, `gamma`, `beta`, `moving_mean`,
//! `moving_variance`). `np.savez(path, **{f"{i:02d}.{l.name}.{w.path.split('/')[-1]}": w.numpy()
//! for i, l in enumerate(model.layers) for w in l.weights})` writes one from a
//! notebook. Arrays must be float32 or float64.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use burn::module::{Param, RunningState};
use burn::tensor::{Device, Tensor, TensorData};
use npyz::npz::NpzArchive;

use crate::model::{ArticleNet, ArticleNetConfig};

/// Why a Keras weight archive could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KerasImportError {
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a zip archive of `.npy` arrays.
    #[error("not a NumPy .npz archive: {0}")]
    NotNpz(String),
    /// No array for a weight the model needs.
    #[error("no array for {wanted} (expected a key like `{example}`); the archive has: {present}")]
    MissingKey {
        wanted: String,
        example: String,
        present: String,
    },
    /// An array with the wrong shape.
    #[error("`{key}` has shape {found:?}, but the article's network needs {expected:?}")]
    Shape {
        key: String,
        expected: Vec<usize>,
        found: Vec<u64>,
    },
    /// An array that is not float32/float64, or cannot be read.
    #[error("`{key}` cannot be read as floats: {reason}")]
    Data { key: String, reason: String },
}

/// Reads the archive at `path` into the article's network on `device`.
pub fn load_keras_npz(
    path: &Path,
    config: &ArticleNetConfig,
    device: &Device,
) -> Result<ArticleNet, KerasImportError> {
    let file = std::fs::File::open(path).map_err(|source| KerasImportError::Open {
        path: path.to_owned(),
        source,
    })?;
    read_keras_npz(std::io::BufReader::new(file), config, device)
}

/// Reads a Keras weight archive into the article's network on `device`.
pub fn read_keras_npz<R: Read + Seek>(
    reader: R,
    config: &ArticleNetConfig,
    device: &Device,
) -> Result<ArticleNet, KerasImportError> {
    let mut archive = KerasArchive::new(reader)?;
    let (pitches, filters) = (config.pitches, config.filters);
    let (units, units2) = (config.lstm_units, config.lstm2_units);

    let mut model = config.init(device);
    let mut conv = |layer: &mut burn::nn::Linear, index: u8, d_input: usize| {
        let kernel = archive.array(index, "kernel", &[1, d_input, filters])?;
        layer.weight = Param::from_tensor(tensor2(kernel, [d_input, filters], device));
        layer.bias = Some(Param::from_tensor(tensor1(
            archive.array(index, "bias", &[filters])?,
            device,
        )));
        Ok::<_, KerasImportError>(())
    };
    conv(&mut model.conv0, 0, pitches)?;
    conv(&mut model.conv2, 2, filters)?;
    conv(&mut model.conv4, 4, filters)?;
    conv(&mut model.conv6, 6, filters)?;

    for (lstm, index, d_input, units) in [
        (&mut model.lstm8, 8u8, filters, units),
        (&mut model.lstm9, 9, units, units2),
    ] {
        let kernel = archive.array(index, "kernel", &[d_input, 4 * units])?;
        let recurrent = archive.array(index, "recurrent_kernel", &[units, 4 * units])?;
        let bias = archive.array(index, "bias", &[4 * units])?;
        lstm.kernel = Param::from_tensor(tensor2(kernel, [d_input, 4 * units], device));
        lstm.recurrent_kernel = Param::from_tensor(tensor2(recurrent, [units, 4 * units], device));
        lstm.bias = Param::from_tensor(tensor1(bias, device));
    }

    let norm = &mut model.norm10;
    norm.gamma = Param::from_tensor(tensor1(archive.array(10, "gamma", &[units2])?, device));
    norm.beta = Param::from_tensor(tensor1(archive.array(10, "beta", &[units2])?, device));
    norm.running_mean = RunningState::new(tensor1(
        archive.array(10, "moving_mean", &[units2])?,
        device,
    ));
    norm.running_var = RunningState::new(tensor1(
        archive.array(10, "moving_variance", &[units2])?,
        device,
    ));

    let kernel = archive.array(11, "kernel", &[units2, pitches])?;
    model.dense11.weight = Param::from_tensor(tensor2(kernel, [units2, pitches], device));
    model.dense11.bias = Some(Param::from_tensor(tensor1(
        archive.array(11, "bias", &[pitches])?,
        device,
    )));
    Ok(model)
}

fn tensor1(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

fn tensor2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// An `.npz` archive read as named float arrays.
struct KerasArchive<R: Read + Seek> {
    archive: NpzArchive<R>,
    names: Vec<String>,
}

impl<R: Read + Seek> KerasArchive<R> {
    fn new(reader: R) -> Result<Self, KerasImportError> {
        let archive =
            NpzArchive::new(reader).map_err(|e| KerasImportError::NotNpz(e.to_string()))?;
        let names = archive.array_names().map(str::to_owned).collect();
        Ok(Self { archive, names })
    }

    /// The array `NN.<any layer name>.<variable>`, checked against `shape`.
    fn array(
        &mut self,
        layer: u8,
        variable: &str,
        shape: &[usize],
    ) -> Result<Vec<f32>, KerasImportError> {
        let prefix = format!("{layer:02}.");
        let key = self
            .names
            .iter()
            .find(|name| name.starts_with(&prefix) && name.rsplit('.').next() == Some(variable))
            .cloned()
            .ok_or_else(|| KerasImportError::MissingKey {
                wanted: format!("layer {layer:02} {variable}"),
                example: format!("{prefix}<layer name>.{variable}"),
                present: self.names.join(", "),
            })?;
        let data_error = |reason: String| KerasImportError::Data {
            key: key.clone(),
            reason,
        };
        let array = self
            .archive
            .by_name(&key)
            .map_err(|e| data_error(e.to_string()))?
            .ok_or_else(|| data_error("listed but not found".to_owned()))?;
        let found = array.shape().to_vec();
        if found.iter().map(|&d| d as usize).ne(shape.iter().copied()) {
            return Err(KerasImportError::Shape {
                key,
                expected: shape.to_vec(),
                found,
            });
        }
        match array.dtype() {
            npyz::DType::Plain(t)
                if t.type_char() == npyz::TypeChar::Float && t.size_field() == 8 =>
            {
                let values: Vec<f64> = array.into_vec().map_err(|e| data_error(e.to_string()))?;
                Ok(values.into_iter().map(|v| v as f32).collect())
            }
            _ => array
                .into_vec::<f32>()
                .map_err(|e| data_error(e.to_string())),
        }
    }
}
