//! Builders for tiny MIDI files written byte by byte, so tests can state exactly
//! what a file holds (running status, sysex, odd headers), and the test data's paths.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The test data shipped in the repository: `tests/data/` (see its README).
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every `.mid` file of the test corpus (`tests/data/corpus`), sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    midi_files_under(&data_dir().join("corpus"))
}

/// Every `.mid` file under `folder`, sorted.
pub fn midi_files_under(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(folder)
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "mid"))
        .collect();
    files.sort();
    files
}

/// One track's event bytes.
#[derive(Default)]
pub struct Track(pub Vec<u8>);

impl Track {
    pub fn delta(&mut self, mut ticks: u32) -> &mut Self {
        let mut groups = vec![(ticks & 0x7f) as u8];
        ticks >>= 7;
        while ticks > 0 {
            groups.push((ticks & 0x7f) as u8 | 0x80);
            ticks >>= 7;
        }
        self.0.extend(groups.iter().rev());
        self
    }

    /// Raw bytes after a delta: a status byte and data, or data alone (running status).
    pub fn raw(&mut self, delta: u32, bytes: &[u8]) -> &mut Self {
        self.delta(delta);
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn on(&mut self, delta: u32, channel: u8, key: u8, velocity: u8) -> &mut Self {
        self.raw(delta, &[0x90 | channel, key, velocity])
    }

    pub fn off(&mut self, delta: u32, channel: u8, key: u8) -> &mut Self {
        self.raw(delta, &[0x80 | channel, key, 64])
    }

    pub fn program(&mut self, delta: u32, channel: u8, program: u8) -> &mut Self {
        self.raw(delta, &[0xC0 | channel, program])
    }

    pub fn tempo(&mut self, delta: u32, micros_per_quarter: u32) -> &mut Self {
        let m = micros_per_quarter.to_be_bytes();
        self.raw(delta, &[0xFF, 0x51, 0x03, m[1], m[2], m[3]])
    }

    /// A time-signature meta event: `numerator / 2^denominator_power`, with
    /// 24 MIDI clocks per click and 8 32nds per quarter.
    pub fn time_signature(
        &mut self,
        delta: u32,
        numerator: u8,
        denominator_power: u8,
    ) -> &mut Self {
        self.raw(
            delta,
            &[0xFF, 0x58, 0x04, numerator, denominator_power, 24, 8],
        )
    }

    pub fn end(&mut self, delta: u32) -> &mut Self {
        self.raw(delta, &[0xFF, 0x2F, 0x00])
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// A Standard MIDI File from a format, the raw division word and track bodies.
pub fn smf(format: u16, division: u16, tracks: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = b"MThd".to_vec();
    bytes.extend(6u32.to_be_bytes());
    bytes.extend(format.to_be_bytes());
    bytes.extend((tracks.len() as u16).to_be_bytes());
    bytes.extend(division.to_be_bytes());
    for track in tracks {
        bytes.extend(b"MTrk");
        bytes.extend((track.len() as u32).to_be_bytes());
        bytes.extend(track);
    }
    bytes
}

/// A small deterministic generator (64-bit LCG) so tests need no RNG crate.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n
    }
}

/// Runs the `cadenza` binary. A private runtime folder keeps Mesa's Vulkan
/// driver from complaining that there is none, as it does on machines
/// without a desktop session.
pub fn cadenza(args: &[&str]) -> Output {
    let runtime = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_cadenza"))
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap()
}

/// Process output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as a command-line argument.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `cadenza train DATA --out MODEL` for one epoch on the CPU with half the
/// files held out, plus `extra` flags.
pub fn train_one_epoch(data: &Path, model: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        path(data),
        "--out",
        path(model),
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--val",
        "0.5",
    ];
    args.extend_from_slice(extra);
    cadenza(&args)
}

/// Copies the two shipped demo chorales into `dir`: a small training folder.
pub fn copy_demo_chorales(dir: &Path) {
    for name in ["chorale-bwv1.6.mid", "chorale-bwv328.mid"] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/demo")
            .join(name);
        std::fs::copy(source, dir.join(name)).unwrap();
    }
}

/// A model file's bytes with its JSON header edited and the checksum fixed.
pub fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    // Signature (8) and format version (4), then the header's length (8).
    let length = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[20..20 + length]).unwrap();
    edit(&mut header);
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(&header);
    out.extend(&bytes[20 + length..bytes.len() - 4]);
    let crc = crc32fast::hash(&out);
    out.extend(crc.to_le_bytes());
    out
}
