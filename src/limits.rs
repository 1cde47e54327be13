//! Every bound on a number a user can type, drag or leave in a file, written
//! down once: the CLI parses flags with [`Limit::parse`], the library checks
//! what it is handed with [`Limit::check`], the app draws its sliders over
//! [`Limit::range`] and clamps settings and autosaves with [`Limit::clamp`].
//!
//! Each bound keeps memory and time finite: generation holds
//! `steps x variations x 106` probabilities, training holds
//! `batch x sequence steps` examples with their gradients, and a roll at most
//! [`ROLL_STEPS`] steps. An absurd value is a one-line error or a clamp with a
//! note, never an allocation that aborts the process.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// An inclusive range a value must lie in, and what users call the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit<T> {
    /// The name in messages, as the flag or control shows it.
    pub name: &'static str,
    pub min: T,
    pub max: T,
}

/// A value outside its [`Limit`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} {value} is outside the allowed {min}..={max}")]
pub struct OutOfRange {
    pub name: &'static str,
    pub value: String,
    pub min: String,
    pub max: String,
}

impl<T: Copy + PartialOrd + Display> Limit<T> {
    pub const fn new(name: &'static str, min: T, max: T) -> Self {
        Self { name, min, max }
    }

    pub fn range(&self) -> RangeInclusive<T> {
        self.min..=self.max
    }

    /// Whether `value` lies inside (false for NaN).
    pub fn contains(&self, value: T) -> bool {
        self.min <= value && value <= self.max
    }

    /// `value` itself when inside, else why not.
    pub fn check(&self, value: T) -> Result<T, OutOfRange> {
        if self.contains(value) {
            Ok(value)
        } else {
            Err(self.out_of_range(&value))
        }
    }

    /// The nearest value inside (the minimum for NaN).
    pub fn clamp(&self, value: T) -> T {
        if value > self.max {
            self.max
        } else if self.contains(value) {
            value
        } else {
            self.min
        }
    }

    /// Clamps `value` in place, adding a line to `notes` when it was outside
    /// (what loading a settings file tells the user).
    pub fn clamp_noting(&self, value: &mut T, notes: &mut Vec<String>) {
        if let Err(error) = self.check(*value) {
            *value = self.clamp(*value);
            notes.push(format!("{error}; using {value}"));
        }
    }

    fn out_of_range(&self, value: &dyn Display) -> OutOfRange {
        OutOfRange {
            name: self.name,
            value: value.to_string(),
            min: self.min.to_string(),
            max: self.max.to_string(),
        }
    }
}

impl<T: Copy + PartialOrd + Display + FromStr> Limit<T> {
    /// Parses a command-line value and checks it (for clap's `value_parser`).
    pub fn parse(&self, text: &str) -> Result<T, String> {
        let value: T = text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a number; {}", self.expected()))?;
        self.check(value).map_err(|error| error.to_string())
    }

    fn expected(&self) -> String {
        format!("{} must be {}..={}", self.name, self.min, self.max)
    }
}

/// Steps a roll may have: a million sixteenth notes is over 34 hours at 120
/// BPM, and the roll's two masks take 32 MB.
pub const ROLL_STEPS: Limit<usize> = Limit::new("roll steps", 1, 1_000_000);

/// Steps generated per continuation: 68 minutes of sixteenths at 60 BPM.
pub const GENERATE_STEPS: Limit<usize> = Limit::new("steps", 1, 16_384);

/// Continuations generated at once. With [`GENERATE_STEPS`] this bounds a
/// generation's probabilities to 16,384 x 32 x 106 floats (222 MB).
pub const VARIATIONS: Limit<usize> = Limit::new("variations", 1, 32);

/// Epochs of one training run.
pub const EPOCHS: Limit<usize> = Limit::new("epochs", 1, 10_000);

/// Epochs a run's weight average spans (`--average-epochs`; 0 or 1: none).
pub const AVERAGE_EPOCHS: Limit<usize> = Limit::new("average epochs", 0, 10_000);

/// Examples per optimizer step.
pub const BATCH: Limit<usize> = Limit::new("batch size", 1, 4_096);

/// Steps per training stretch of a recurrent network.
pub const SEQUENCE_STEPS: Limit<usize> = Limit::new("sequence steps", 1, 1_024);

/// Predicted steps per optimizer step (batch x sequence steps of a recurrent
/// network): the LSTM keeps every step's gates for the backward pass, about
/// 20 KB per step with 256 units, so this bounds a batch to about 0.7 GB.
pub const STEPS_PER_BATCH: Limit<usize> = Limit::new("batch x sequence steps", 1, 32_768);

/// Tempo in quarter notes per minute, for playback, export and PNG input.
pub const TEMPO_BPM: Limit<f64> = Limit::new("tempo (BPM)", 4.0, 1_000.0);

/// Frames per second of rendered audio.
pub const SAMPLE_RATE: Limit<u32> = Limit::new("sample rate (Hz)", 16_000, 192_000);

/// Seconds of release tail rendered after the last note.
pub const TAIL_SECONDS: Limit<f32> = Limit::new("tail (s)", 0.0, 60.0);

/// Gain of rendered audio, in decibels.
pub const GAIN_DB: Limit<f32> = Limit::new("gain (dB)", -60.0, 24.0);

/// Bytes of a WAV file's sample data: the format's 32-bit sizes end at 4 GiB.
pub const WAV_DATA_BYTES: Limit<u64> = Limit::new("WAV data (bytes)", 0, u32::MAX as u64 - 64);

/// Every how many held-out windows `cadenza eval` starts a continuation.
pub const EVAL_STRIDE: Limit<usize> = Limit::new("stride", 1, ROLL_STEPS.max);

/// Worker threads for batch conversions.
pub const JOBS: Limit<usize> = Limit::new("jobs", 1, 256);

/// Seconds of live playback `cadenza bench audio` measures.
pub const BENCH_SECONDS: Limit<f64> = Limit::new("seconds", 1.0, 3_600.0);

/// Horizontal zoom of the roll view, pixels per step.
pub const ZOOM: Limit<f32> = Limit::new("zoom", 1.0, 24.0);

/// Vertical zoom of the roll view, times the base row height.
pub const PITCH_ZOOM: Limit<f32> = Limit::new("pitch zoom", 1.0, 4.0);

/// Playback gain, linear.
pub const VOLUME: Limit<f32> = Limit::new("volume", 0.0, 1.5);

/// The article's starting boost.
pub const VANISH_PROOF: Limit<f64> = Limit::new("vanish_proof", 0.0, 1.0);

/// The article's boost growth per step.
pub const VANISH_INC: Limit<f64> = Limit::new("vanish_inc", 0.98, 1.03);

/// The threshold rule's cut-off probability.
pub const THRESHOLD: Limit<f32> = Limit::new("threshold", 0.0, 1.0);

/// The sampling rule's temperature.
pub const TEMPERATURE: Limit<f32> = Limit::new("temperature", 0.05, 10.0);

/// Notes per step the density control may aim at (a roll has 106 rows; a
/// dense orchestral texture sounds about 20).
pub const DENSITY: Limit<f32> = Limit::new("density", 0.0, 48.0);

/// Memory the app's undo history may hold, in bytes (a roll of
/// [`ROLL_STEPS`] steps is 32 MB, so at least 8 such edits).
pub const UNDO_BYTES: usize = 256 << 20;

/// Bytes a PNG decoder may hold at once. A roll image is read a row (one
/// pitch across every step, at most 8 MB) at a time; an interlaced one is
/// decoded whole and must fit (about 79,000 steps at 8 bytes a pixel).
pub const PNG_DECODE_BYTES: usize = 64 << 20;

/// Numbers in a model file's header that size the network: a header can
/// claim any shape, and the network is built from it before the weights are
/// read.
pub const NETWORK_UNITS: Limit<usize> = Limit::new("network units", 1, 8_192);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::{GENERATE_STEPS, Limit, TEMPO_BPM};

    #[test]
    fn values_are_checked_parsed_and_clamped() {
        assert_eq!(GENERATE_STEPS.check(106), Ok(106));
        let error = GENERATE_STEPS.check(4_000_000_000_000).unwrap_err();
        assert_eq!(
            error.to_string(),
            "steps 4000000000000 is outside the allowed 1..=16384"
        );
        assert_eq!(GENERATE_STEPS.parse(" 9 "), Ok(9));
        assert!(GENERATE_STEPS.parse("0").is_err());
        assert!(
            GENERATE_STEPS
                .parse("lots")
                .unwrap_err()
                .contains("1..=16384")
        );
        assert_eq!(GENERATE_STEPS.clamp(0), 1);
        assert_eq!(GENERATE_STEPS.clamp(usize::MAX), 16_384);
        assert_eq!(TEMPO_BPM.clamp(f64::NAN), 4.0);
        assert!(!TEMPO_BPM.contains(f64::INFINITY));
        let small = Limit::new("x", -1.0f32, 1.0);
        assert_eq!(small.clamp(-3.0), -1.0);
    }
}
