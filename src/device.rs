//! The one place that names burn backends. Everything else takes a [`Device`]
//! and never asks which backend sits behind it.
//!
//! - CPU: burn's pure-Rust `flex` backend, the maintained successor of
//!   burn-ndarray and the faster of the two for this model.
//! - `ndarray`: burn's deprecated ndarray backend, behind the cargo feature of
//!   the same name, kept for comparison.
//! - GPU: burn's `wgpu` backend. Adapters are listed through wgpu itself so the
//!   choice is made before burn opens anything: `auto` takes a real GPU
//!   (discrete, then integrated, then virtual) and never a software rasteriser
//!   such as Mesa's lavapipe; `gpu` takes the best adapter there is, software
//!   included (with a notice), and is an error when there is none.

use std::fmt;
use std::sync::OnceLock;

use burn::tensor::{Device, DeviceKind};

/// Which compute backend the user asked for.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A real GPU when there is one, else the CPU (training: the CPU's
    /// plain-Rust trainer, faster than burn on the GPUs measured).
    #[default]
    Auto,
    /// burn's `flex` CPU backend.
    Cpu,
    /// burn's `wgpu` backend on the best adapter, software ones included.
    Gpu,
    /// burn's deprecated `ndarray` CPU backend (cargo feature `ndarray`).
    Ndarray,
}

/// What kind of device a wgpu adapter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    Discrete,
    Integrated,
    Virtual,
    /// A software rasteriser on the CPU (lavapipe, llvmpipe, WARP, SwiftShader).
    Software,
    Other,
}

impl AdapterKind {
    /// Preference order for `gpu`: lower is better.
    fn rank(self) -> u8 {
        match self {
            Self::Discrete => 0,
            Self::Integrated => 1,
            Self::Virtual => 2,
            Self::Other => 3,
            Self::Software => 4,
        }
    }

    fn is_real_gpu(self) -> bool {
        matches!(self, Self::Discrete | Self::Integrated | Self::Virtual)
    }
}

impl fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Discrete => "discrete GPU",
            Self::Integrated => "integrated GPU",
            Self::Virtual => "virtual GPU",
            Self::Software => "software adapter",
            Self::Other => "other adapter",
        })
    }
}

/// One wgpu adapter found on this machine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Adapter {
    pub name: String,
    pub kind: AdapterKind,
    /// The graphics API: Vulkan, Metal or Dx12.
    pub api: String,
    /// The driver and its version, as the driver reports them.
    pub driver: String,
    /// Position among adapters of the same kind and API, which is how burn
    /// addresses them (`DiscreteGpu(index)`).
    index_in_kind: usize,
}

impl fmt::Display for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.kind, self.api)
    }
}

/// Why the requested backend cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceError {
    #[error(
        "no GPU adapter found (wgpu sees no Vulkan, Metal or DirectX 12 device); \
         use --backend cpu or auto"
    )]
    NoGpu,
    #[error(
        "this build has no ndarray backend; rebuild with `--features ndarray` or use --backend cpu"
    )]
    NdarrayNotBuilt,
}

/// A device ready for the model, and how it was chosen.
#[derive(Clone, Debug)]
pub struct SelectedDevice {
    pub device: Device,
    /// What runs the model, for one line of output: "CPU (burn flex)" or the
    /// adapter's name and kind.
    pub label: String,
    /// The adapter, for GPU devices.
    pub adapter: Option<Adapter>,
    /// Why `auto` fell back to the CPU, or a warning about a software adapter.
    pub notice: Option<String>,
    /// Generation may run on the plain-Rust copy of the network
    /// (`model::native`) rather than on burn: true for the default CPU backend.
    pub native_inference: bool,
}

impl SelectedDevice {
    /// Whether the model runs on a wgpu adapter.
    pub fn is_gpu(&self) -> bool {
        self.adapter.is_some()
    }
}

/// The CPU device: burn's `flex` backend.
pub fn cpu() -> Device {
    Device::flex()
}

/// Whether `device` (with or without autodiff) is the default CPU device,
/// where training runs on the plain-Rust trainer.
pub fn is_default_cpu(device: &Device) -> bool {
    device.clone().without_autodiff() == cpu()
}

/// The CPU device, labelled.
pub fn cpu_selected(notice: Option<String>) -> SelectedDevice {
    SelectedDevice {
        device: cpu(),
        label: "CPU (burn flex)".to_owned(),
        adapter: None,
        notice,
        native_inference: true,
    }
}

/// The wgpu adapters on this machine (Vulkan, Metal, DirectX 12), best first.
/// Asked once per process: creating graphics instances is slow and the Vulkan
/// loader dislikes instances coming and going on several threads.
pub fn adapters() -> &'static [Adapter] {
    static ADAPTERS: OnceLock<Vec<Adapter>> = OnceLock::new();
    ADAPTERS.get_or_init(list_adapters)
}

fn list_adapters() -> Vec<Adapter> {
    // `WGPU_BACKEND=vulkan` (etc.) narrows the search, as in other wgpu programs.
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let infos: Vec<wgpu::AdapterInfo> = pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(wgpu::Adapter::get_info)
        .collect();
    let mut adapters: Vec<Adapter> = Vec::with_capacity(infos.len());
    for info in infos {
        let kind = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => AdapterKind::Discrete,
            wgpu::DeviceType::IntegratedGpu => AdapterKind::Integrated,
            wgpu::DeviceType::VirtualGpu => AdapterKind::Virtual,
            wgpu::DeviceType::Cpu => AdapterKind::Software,
            wgpu::DeviceType::Other => AdapterKind::Other,
        };
        let api = format!("{:?}", info.backend);
        let index_in_kind = adapters
            .iter()
            .filter(|a| a.kind == kind && a.api == api)
            .count();
        let driver = [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        adapters.push(Adapter {
            name: info.name,
            kind,
            api,
            driver,
            index_in_kind,
        });
    }
    adapters.sort_by_key(|a| a.kind.rank());
    adapters
}

fn wgpu_device(adapter: &Adapter) -> Device {
    let index = adapter.index_in_kind;
    Device::wgpu(match adapter.kind {
        AdapterKind::Discrete => DeviceKind::DiscreteGpu(index),
        AdapterKind::Integrated => DeviceKind::IntegratedGpu(index),
        AdapterKind::Virtual => DeviceKind::VirtualGpu(index),
        AdapterKind::Software => DeviceKind::Cpu,
        AdapterKind::Other => DeviceKind::DefaultDevice,
    })
}

/// Picks the device for `choice` from the adapters this machine has.
pub fn select(choice: BackendChoice) -> Result<SelectedDevice, DeviceError> {
    match choice {
        // Listing adapters opens the graphics drivers: only when a GPU may be used.
        BackendChoice::Cpu | BackendChoice::Ndarray => select_from(choice, &[]),
        BackendChoice::Auto | BackendChoice::Gpu => select_from(choice, adapters()),
    }
}

/// The device to train on for `choice`: as [`select`], except that `auto`
/// trains on the CPU, where the plain-Rust trainer outpaces burn on every
/// GPU measured so far (README, "Performance": 1.3-3.4x an H200 through
/// Vulkan). `gpu` still trains on burn's GPU path.
pub fn select_for_training(choice: BackendChoice) -> Result<SelectedDevice, DeviceError> {
    match choice {
        BackendChoice::Auto => Ok(cpu_selected(None)),
        _ => select(choice),
    }
}

/// [`select`] over a given adapter list (tests pass made-up ones).
pub fn select_from(
    choice: BackendChoice,
    adapters: &[Adapter],
) -> Result<SelectedDevice, DeviceError> {
    let gpu = |adapter: &Adapter, notice: Option<String>| SelectedDevice {
        device: wgpu_device(adapter),
        label: format!("GPU: {adapter}"),
        adapter: Some(adapter.clone()),
        notice,
        native_inference: false,
    };
    match choice {
        BackendChoice::Cpu => Ok(cpu_selected(None)),
        BackendChoice::Ndarray => ndarray(),
        BackendChoice::Gpu => {
            let best = adapters
                .iter()
                .min_by_key(|a| a.kind.rank())
                .ok_or(DeviceError::NoGpu)?;
            let notice = (!best.kind.is_real_gpu()).then(|| {
                format!(
                    "{} is not a real GPU: expect it to be far slower than --backend cpu",
                    best.name
                )
            });
            Ok(gpu(best, notice))
        }
        BackendChoice::Auto => match adapters
            .iter()
            .filter(|a| a.kind.is_real_gpu())
            .min_by_key(|a| a.kind.rank())
        {
            Some(adapter) => Ok(gpu(adapter, None)),
            None => {
                let why = match adapters.first() {
                    Some(software) => format!(
                        "using the CPU: the only graphics adapter is {software}, \
                         which is slower than the CPU backend"
                    ),
                    None => "using the CPU: no GPU adapter found".to_owned(),
                };
                Ok(cpu_selected(Some(why)))
            }
        },
    }
}

#[cfg(feature = "ndarray")]
fn ndarray() -> Result<SelectedDevice, DeviceError> {
    Ok(SelectedDevice {
        device: Device::ndarray(),
        label: "CPU (burn ndarray)".to_owned(),
        adapter: None,
        notice: None,
        native_inference: false,
    })
}

#[cfg(not(feature = "ndarray"))]
fn ndarray() -> Result<SelectedDevice, DeviceError> {
    Err(DeviceError::NdarrayNotBuilt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;

    fn adapter(name: &str, kind: AdapterKind) -> Adapter {
        Adapter {
            name: name.to_owned(),
            kind,
            api: "Vulkan".to_owned(),
            driver: String::new(),
            index_in_kind: 0,
        }
    }

    #[test]
    fn auto_never_picks_a_software_adapter() {
        let lavapipe = [adapter(
            "llvmpipe (LLVM 15.0.6, 256 bits)",
            AdapterKind::Software,
        )];
        let chosen = select_from(BackendChoice::Auto, &lavapipe).unwrap();
        assert!(!chosen.is_gpu());
        assert!(chosen.notice.unwrap().contains("llvmpipe"));
        let none = select_from(BackendChoice::Auto, &[]).unwrap();
        assert!(!none.is_gpu());
        assert!(none.notice.unwrap().contains("no GPU adapter"));
    }

    #[test]
    fn auto_and_gpu_prefer_discrete_to_integrated() {
        let both = [
            adapter("Intel UHD", AdapterKind::Integrated),
            adapter("Radeon RX", AdapterKind::Discrete),
        ];
        for choice in [BackendChoice::Auto, BackendChoice::Gpu] {
            let chosen = select_from(choice, &both).unwrap();
            assert_eq!(chosen.adapter.unwrap().name, "Radeon RX");
            assert!(chosen.notice.is_none());
        }
    }

    #[test]
    fn gpu_takes_a_software_adapter_with_a_warning_and_fails_without_any() {
        let lavapipe = [adapter("llvmpipe", AdapterKind::Software)];
        let chosen = select_from(BackendChoice::Gpu, &lavapipe).unwrap();
        assert!(chosen.is_gpu());
        assert!(chosen.notice.unwrap().contains("not a real GPU"));
        assert_eq!(
            select_from(BackendChoice::Gpu, &[]).unwrap_err(),
            DeviceError::NoGpu
        );
    }
}
