//! MIDI as it arrives from a keyboard, without any port library: messages
//! read from bytes, notes recorded at the playhead and written into the roll
//! on its grid, and the pause that asks the model to answer.
//!
//! The app's ports (`app::midi`, midir) feed this module; tests feed it byte
//! streams.

use crate::arrangement::{PlayedNote, TICKS_PER_STEP};
use crate::roll::{PianoRoll, Pitch, RollNote};

/// A message a keyboard sends that Cadenza acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveMessage {
    NoteOn {
        channel: u8,
        key: u8,
        velocity: u8,
    },
    NoteOff {
        channel: u8,
        key: u8,
    },
    /// Control 123 or 120: every note off (a panic button, or a port closing).
    AllNotesOff {
        channel: u8,
    },
}

impl LiveMessage {
    /// Reads one complete message (as port libraries deliver them); `None`
    /// for anything else (clock, sysex, controllers, a short message).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let (&status, data) = bytes.split_first()?;
        let channel = status & 0x0F;
        match (status & 0xF0, data) {
            (0x90, &[key, velocity, ..]) if key < 128 && (1..128).contains(&velocity) => {
                Some(Self::NoteOn {
                    channel,
                    key,
                    velocity,
                })
            }
            (0x90, &[key, 0, ..]) | (0x80, &[key, _, ..]) if key < 128 => {
                Some(Self::NoteOff { channel, key })
            }
            (0xB0, &[120 | 123, _, ..]) => Some(Self::AllNotesOff { channel }),
            _ => None,
        }
    }

    /// The message as three MIDI bytes.
    pub fn to_bytes(self) -> [u8; 3] {
        match self {
            Self::NoteOn {
                channel,
                key,
                velocity,
            } => [0x90 | (channel & 15), key & 0x7F, velocity & 0x7F],
            Self::NoteOff { channel, key } => [0x80 | (channel & 15), key & 0x7F, 64],
            Self::AllNotesOff { channel } => [0xB0 | (channel & 15), 123, 0],
        }
    }
}

/// A note as played, at fractional steps of the roll.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TakenNote {
    pub start: f64,
    pub end: f64,
    pub key: u8,
    pub velocity: u8,
}

impl TakenNote {
    /// The step it starts on: the nearest.
    pub fn start_step(&self) -> usize {
        self.start.max(0.0).round() as usize
    }

    /// Its length on the grid: to the step nearest its end, at least one.
    pub fn len_steps(&self) -> usize {
        let end = self.end.max(0.0).round() as usize;
        end.saturating_sub(self.start_step()).max(1)
    }
}

/// Notes held down and notes finished, stamped with the playhead (in steps)
/// when each message came.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    /// (channel, key) -> (start, velocity) of a note held down.
    held: Vec<((u8, u8), (f64, u8))>,
    taken: Vec<TakenNote>,
}

impl Recorder {
    /// Takes one message that came when the playhead was at `step`.
    pub fn take(&mut self, message: LiveMessage, step: f64) {
        match message {
            LiveMessage::NoteOn {
                channel,
                key,
                velocity,
            } => {
                // A key struck again while held ends the earlier note.
                self.release(channel, key, step);
                self.held.push(((channel, key), (step, velocity)));
            }
            LiveMessage::NoteOff { channel, key } => self.release(channel, key, step),
            LiveMessage::AllNotesOff { channel } => {
                let keys: Vec<u8> = self
                    .held
                    .iter()
                    .filter(|(held, _)| held.0 == channel)
                    .map(|(held, _)| held.1)
                    .collect();
                for key in keys {
                    self.release(channel, key, step);
                }
            }
        }
    }

    fn release(&mut self, channel: u8, key: u8, step: f64) {
        if let Some(index) = self
            .held
            .iter()
            .position(|(held, _)| *held == (channel, key))
        {
            let (_, (start, velocity)) = self.held.swap_remove(index);
            self.taken.push(TakenNote {
                start,
                end: step.max(start),
                key,
                velocity,
            });
        }
    }

    /// Whether any key is down.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Whether nothing was played since the last [`Self::finish`].
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.taken.is_empty()
    }

    /// Ends every held note at `step` and hands over everything played, in
    /// order of start; the recorder starts afresh.
    pub fn finish(&mut self, step: f64) -> Vec<TakenNote> {
        let held: Vec<(u8, u8)> = self.held.iter().map(|(key, _)| *key).collect();
        for (channel, key) in held {
            self.release(channel, key, step);
        }
        let mut taken = std::mem::take(&mut self.taken);
        taken.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.key.cmp(&b.key)));
        taken
    }
}

/// Writes played notes into `roll` on its grid (the roll grows to hold
/// them, up to its limit): each becomes cells from its nearest step, and a
/// played note of the target part with its velocity and its timing between
/// grid lines. Pitches the roll has no row for are left out. Returns how
/// many notes were written.
pub fn write_taken(
    roll: &mut PianoRoll,
    taken: &[TakenNote],
) -> Result<usize, crate::roll::RollError> {
    let written: Vec<&TakenNote> = taken
        .iter()
        .filter(|n| Pitch::from_midi(n.key).is_some())
        .collect();
    let end = written
        .iter()
        .map(|n| n.start_step() + n.len_steps())
        .max()
        .unwrap_or(0);
    if end > roll.steps() {
        let mut sounding = roll.sounding_masks().to_vec();
        let mut onsets = roll.onset_masks().to_vec();
        sounding.resize(end, 0);
        onsets.resize(end, 0);
        *roll = roll.with_cells(sounding, onsets)?;
    }
    for note in &written {
        if let Some(pitch) = Pitch::from_midi(note.key) {
            roll.add_note(RollNote {
                start: note.start_step(),
                pitch,
                len: note.len_steps(),
            });
        }
    }
    // The performance gives new notes their part and program; each then gets
    // its velocity and timing as played.
    let performance = roll.performance(100);
    let fine = |at: f64, step: usize| {
        ((at - step as f64) * f64::from(TICKS_PER_STEP))
            .round()
            .clamp(-f64::from(TICKS_PER_STEP), f64::from(TICKS_PER_STEP)) as i32
    };
    let parts = performance.parts.clone();
    let mut played: Vec<PlayedNote> = Vec::with_capacity(written.len());
    for note in &written {
        let (start, len) = (note.start_step(), note.len_steps());
        let Some(voiced) = performance
            .notes
            .iter()
            .find(|n| n.start == start && n.key == note.key && n.in_roll)
        else {
            continue;
        };
        played.push(PlayedNote {
            velocity: note.velocity.clamp(1, 127),
            start_offset: fine(note.start, start),
            end_offset: fine(note.end, start + len),
            len: voiced.len,
            ..*voiced
        });
    }
    let arrangement = roll.arrangement_mut();
    arrangement.add_played(parts, played);
    Ok(written.len())
}

/// When a player pauses: after notes were played and every key let go, a
/// stretch of silence of `pause_seconds` (one bar) asks for an answer.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerWatch {
    pause_seconds: f64,
    /// When the last key was let go, while one is owed an answer.
    released_at: Option<f64>,
    held: usize,
    played: bool,
}

impl AnswerWatch {
    /// Answers after `pause_seconds` of silence.
    pub fn new(pause_seconds: f64) -> Self {
        Self {
            pause_seconds: pause_seconds.max(0.05),
            released_at: None,
            held: 0,
            played: false,
        }
    }

    /// Takes a message that came at `seconds` (any clock that only goes on).
    pub fn take(&mut self, message: LiveMessage, seconds: f64) {
        match message {
            LiveMessage::NoteOn { .. } => {
                self.held += 1;
                self.played = true;
                self.released_at = None;
            }
            LiveMessage::NoteOff { .. } => {
                self.held = self.held.saturating_sub(1);
                if self.held == 0 && self.played {
                    self.released_at = Some(seconds);
                }
            }
            LiveMessage::AllNotesOff { .. } => {
                self.held = 0;
                if self.played {
                    self.released_at = Some(seconds);
                }
            }
        }
    }

    /// True once, when the pause after the last phrase has lasted long
    /// enough at `now`; the watch then waits for the next phrase.
    pub fn due(&mut self, now: f64) -> bool {
        match self.released_at {
            Some(released) if self.held == 0 && now - released >= self.pause_seconds => {
                self.released_at = None;
                self.played = false;
                true
            }
            _ => false,
        }
    }

    /// Seconds until [`Self::due`] could say yes, for the UI to wake then.
    pub fn wait(&self, now: f64) -> Option<f64> {
        self.released_at
            .filter(|_| self.held == 0)
            .map(|released| (released + self.pause_seconds - now).max(0.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;
    use crate::roll::RollMeta;

    #[test]
    fn messages_read_from_bytes() {
        assert_eq!(
            LiveMessage::parse(&[0x91, 60, 100]),
            Some(LiveMessage::NoteOn {
                channel: 1,
                key: 60,
                velocity: 100
            })
        );
        assert_eq!(
            LiveMessage::parse(&[0x91, 60, 0]),
            Some(LiveMessage::NoteOff {
                channel: 1,
                key: 60
            })
        );
        assert_eq!(
            LiveMessage::parse(&[0x8F, 61, 10]),
            Some(LiveMessage::NoteOff {
                channel: 15,
                key: 61
            })
        );
        assert_eq!(
            LiveMessage::parse(&[0xB2, 123, 0]),
            Some(LiveMessage::AllNotesOff { channel: 2 })
        );
        for ignored in [
            &[][..],
            &[0xF8],
            &[0x90, 60],
            &[0xB0, 7, 100],
            &[0x90, 200, 1],
        ] {
            assert_eq!(LiveMessage::parse(ignored), None, "{ignored:?}");
        }
        let on = LiveMessage::NoteOn {
            channel: 3,
            key: 64,
            velocity: 90,
        };
        assert_eq!(LiveMessage::parse(&on.to_bytes()), Some(on));
    }

    #[test]
    fn a_take_lands_on_the_grid_with_its_velocities_and_timing() {
        let mut recorder = Recorder::default();
        let on = |key, velocity| LiveMessage::NoteOn {
            channel: 0,
            key,
            velocity,
        };
        let off = |key| LiveMessage::NoteOff { channel: 0, key };
        recorder.take(on(60, 90), 4.1);
        recorder.take(on(64, 50), 4.4);
        recorder.take(off(60), 6.05);
        recorder.take(on(60, 70), 6.3); // struck again
        recorder.take(on(10, 70), 6.3); // no row in the roll
        let taken = recorder.finish(9.0);
        assert!(recorder.is_empty());
        assert_eq!(taken.len(), 4);

        let mut roll = PianoRoll::new(6, RollMeta::default()).unwrap();
        assert_eq!(write_taken(&mut roll, &taken).unwrap(), 3);
        assert_eq!(roll.steps(), 9);
        let notes: Vec<_> = roll
            .notes()
            .iter()
            .map(|n| (n.start, n.pitch.midi(), n.len))
            .collect();
        assert_eq!(notes, vec![(4, 60, 2), (4, 64, 5), (6, 60, 3)]);
        let played: Vec<_> = roll
            .performance(100)
            .notes
            .iter()
            .map(|n| (n.start, n.key, n.velocity, n.start_offset))
            .collect();
        assert_eq!(
            played,
            vec![(4, 60, 90, 10), (4, 64, 50, 38), (6, 60, 70, 29)]
        );
    }

    #[test]
    fn a_bar_of_silence_after_a_phrase_asks_for_an_answer_once() {
        let mut watch = AnswerWatch::new(2.0);
        let on = LiveMessage::NoteOn {
            channel: 0,
            key: 60,
            velocity: 90,
        };
        let off = LiveMessage::NoteOff {
            channel: 0,
            key: 60,
        };
        assert!(!watch.due(10.0), "nothing played yet");
        watch.take(on, 0.0);
        watch.take(on, 0.5);
        watch.take(off, 1.0);
        assert!(!watch.due(5.0), "a key is still down");
        watch.take(off, 1.5);
        assert_eq!(watch.wait(2.5), Some(1.0));
        assert!(!watch.due(3.0));
        assert!(watch.due(3.5));
        assert!(!watch.due(9.0), "answered once");
        watch.take(on, 10.0);
        watch.take(off, 10.2);
        assert!(watch.due(12.3));
    }
}
