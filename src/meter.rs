//! Where a step falls in the bar: the time signature a file gives (4/4 where it
//! gives none) read on the roll's grid. The composing network hears each
//! step's place in the bar and the beat, so its onsets land where the music
//! puts them; the measures count onsets on a beat with the same rule.

/// A time signature as MIDI writes it: `numerator / denominator`, the
/// denominator a power of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TimeSignature {
    pub numerator: u8,
    pub denominator: u8,
}

impl Default for TimeSignature {
    fn default() -> Self {
        Self::COMMON
    }
}

impl TimeSignature {
    /// 4/4, assumed where a file has no time signature.
    pub const COMMON: Self = Self {
        numerator: 4,
        denominator: 4,
    };

    /// `numerator / denominator`, or `None` unless the numerator is 1..=64 and
    /// the denominator a power of two 1..=64.
    pub fn new(numerator: u8, denominator: u8) -> Option<Self> {
        ((1..=64).contains(&numerator) && denominator.is_power_of_two() && denominator <= 64)
            .then_some(Self {
                numerator,
                denominator,
            })
    }

    /// As a MIDI time-signature event stores the denominator: its power of two.
    pub fn denominator_power(self) -> u8 {
        self.denominator.trailing_zeros() as u8
    }

    /// Whether the beat is a dotted note: 6/8, 9/8, 12/16 and the like are
    /// felt in groups of three.
    fn is_compound(self) -> bool {
        self.denominator >= 8 && self.numerator > 3 && self.numerator.is_multiple_of(3)
    }
}

impl std::fmt::Display for TimeSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

/// Values per step in [`Meter::features`].
pub const METER_FEATURES: usize = SUBDIVISIONS.len() + MAX_BEATS;

/// Subdivisions of the beat a step may fall on, one feature each.
const SUBDIVISIONS: [usize; 6] = [1, 2, 3, 4, 6, 8];
/// Beats in the bar told apart; later beats share the last feature.
const MAX_BEATS: usize = 8;

/// A time signature on a grid: steps per beat and beats per bar, counted
/// from step 0 (the file's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Meter {
    steps_per_beat: usize,
    beats_per_bar: usize,
}

impl Default for Meter {
    fn default() -> Self {
        Self::new(
            TimeSignature::COMMON,
            crate::roll::DEFAULT_STEPS_PER_QUARTER,
        )
    }
}

impl Meter {
    /// `signature` on a grid of `steps_per_quarter` steps per quarter note.
    /// A beat shorter than a step (eighths at one step per quarter) is one
    /// step.
    pub fn new(signature: TimeSignature, steps_per_quarter: u8) -> Self {
        let per_beat = if signature.is_compound() { 3 } else { 1 };
        let quarters_per_beat = 4.0 * per_beat as f64 / f64::from(signature.denominator.max(1));
        let steps_per_beat =
            ((f64::from(steps_per_quarter) * quarters_per_beat).round() as usize).max(1);
        let beats_per_bar = (usize::from(signature.numerator) / per_beat).max(1);
        Self {
            steps_per_beat,
            beats_per_bar,
        }
    }

    pub fn steps_per_beat(self) -> usize {
        self.steps_per_beat
    }

    pub fn beats_per_bar(self) -> usize {
        self.beats_per_bar
    }

    pub fn steps_per_bar(self) -> usize {
        self.steps_per_beat * self.beats_per_bar
    }

    /// `step` (negative: before the file's start) moved into the first bar,
    /// which has the same place in the bar.
    pub fn wrap(self, step: i64) -> usize {
        step.rem_euclid(self.steps_per_bar() as i64) as usize
    }

    /// Whether `step` starts a beat.
    pub fn is_beat(self, step: usize) -> bool {
        step.is_multiple_of(self.steps_per_beat)
    }

    /// Whether `step` starts a bar.
    pub fn is_bar(self, step: usize) -> bool {
        step.is_multiple_of(self.steps_per_bar())
    }

    /// What the network hears of `step`'s place: one value per subdivision
    /// of the beat (1 when the step falls on it: beat, half, third, quarter,
    /// sixth, eighth), then the beat of the bar, one-hot. `out` holds
    /// [`METER_FEATURES`] values.
    pub fn features(self, step: usize, out: &mut [f32]) {
        let (subdivisions, beats) = out.split_at_mut(SUBDIVISIONS.len());
        let within = step % self.steps_per_beat;
        for (value, &parts) in subdivisions.iter_mut().zip(&SUBDIVISIONS) {
            *value = if (within * parts).is_multiple_of(self.steps_per_beat) {
                1.0
            } else {
                0.0
            };
        }
        beats.fill(0.0);
        let beat = (step / self.steps_per_beat) % self.beats_per_bar;
        beats[beat.min(MAX_BEATS - 1)] = 1.0;
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn common_time_on_sixteenths() {
        let meter = Meter::new(TimeSignature::COMMON, 4);
        assert_eq!((meter.steps_per_beat(), meter.beats_per_bar()), (4, 4));
        assert!(meter.is_beat(8) && !meter.is_beat(6) && meter.is_bar(16));
        let mut f = [0.0; METER_FEATURES];
        meter.features(6, &mut f); // the middle of beat 2
        assert_eq!(&f[..6], &[0.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
        assert_eq!(&f[6..], &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn compound_and_odd_metres() {
        let six_eight = Meter::new(TimeSignature::new(6, 8).unwrap_or_default(), 4);
        assert_eq!(
            (six_eight.steps_per_beat(), six_eight.beats_per_bar()),
            (6, 2)
        );
        let three_four = Meter::new(TimeSignature::new(3, 4).unwrap_or_default(), 1);
        assert_eq!(
            (three_four.steps_per_beat(), three_four.beats_per_bar()),
            (1, 3)
        );
        let eighths_on_quarters = Meter::new(TimeSignature::new(5, 8).unwrap_or_default(), 1);
        assert_eq!(eighths_on_quarters.steps_per_beat(), 1);
        assert_eq!(TimeSignature::new(3, 5), None);
        assert_eq!(
            TimeSignature::new(7, 8).map(|t| t.denominator_power()),
            Some(3)
        );
    }
}
