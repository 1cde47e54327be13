//! Sound in the app: the playback settings, the SoundFont, and the output
//! device, opened on demand. A song the audio thread cannot take yet (its
//! queue is full) is kept, reported and sent again on the next frame.

use std::sync::Arc;

use crate::audio::live::QueueFull;
use crate::audio::output::AudioOutput;
use crate::audio::player::{PlayerCommand, Song};
use crate::audio::soundfont::{SoundFont, load_soundfont};
use crate::limits;
use crate::roll::Tempo;

/// Playback settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TransportSettings {
    /// Quarter notes per minute.
    pub bpm: f64,
    /// General MIDI program.
    pub program: u8,
    /// Linear gain.
    pub volume: f32,
    /// Loop the selection, else the generated part.
    pub looping: bool,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            bpm: 120.0,
            program: 0,
            volume: 1.0,
            looping: false,
        }
    }
}

impl TransportSettings {
    /// These settings inside the ranges the app offers; a note for each
    /// value that was not.
    pub fn clamped(mut self, notes: &mut Vec<String>) -> Self {
        limits::TEMPO_BPM.clamp_noting(&mut self.bpm, notes);
        limits::VOLUME.clamp_noting(&mut self.volume, notes);
        if self.program > 127 {
            notes.push(format!(
                "program {} is not a General MIDI program; using 0",
                self.program
            ));
            self.program = 0;
        }
        self
    }

    /// `song` at this tempo and instrument.
    pub fn apply_to(&self, song: Song) -> Song {
        let song = song.with_program(self.program);
        match Tempo::from_bpm(self.bpm) {
            Some(tempo) => song.with_tempo(tempo),
            None => song,
        }
    }
}

/// Whether sound can play.
enum Audio {
    /// Not opened yet (opened on the first Play).
    Closed,
    Open(Box<AudioOutput>),
    Unavailable(String),
    /// Tests and headless runs: never open a device.
    Disabled,
}

/// Sound's state.
pub struct Transport {
    pub settings: TransportSettings,
    audio: Audio,
    soundfont: Option<Arc<SoundFont>>,
    /// A song the audio thread refused, to send again.
    unsent: Option<Song>,
    /// Set when there is no device and the player runs silently.
    silent_because: Option<String>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("settings", &self.settings)
            .field("problem", &self.problem())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Sound with `settings`; `enabled` false never opens a device.
    pub fn new(settings: TransportSettings, enabled: bool) -> Self {
        Self {
            settings,
            audio: if enabled {
                Audio::Closed
            } else {
                Audio::Disabled
            },
            soundfont: None,
            unsent: None,
            silent_because: None,
        }
    }

    /// The SoundFont in use (the shipped one until another is opened).
    pub fn soundfont(&self) -> Option<Arc<SoundFont>> {
        self.soundfont.clone()
    }

    /// Plays with `font` from now on (the next Play opens the output with it).
    pub fn set_soundfont(&mut self, font: Arc<SoundFont>) {
        self.soundfont = Some(font);
        if let Audio::Open(_) | Audio::Unavailable(_) = self.audio {
            self.audio = Audio::Closed;
        }
    }

    /// Opens the output device with `song` if it is not open yet; a failure
    /// is kept as the reason the transport is disabled.
    pub fn open(&mut self, song: Song, loop_region: Option<(f64, f64)>) {
        if !matches!(self.audio, Audio::Closed) {
            return;
        }
        let font = match &self.soundfont {
            Some(font) => Ok(Arc::clone(font)),
            None => load_soundfont(None),
        };
        self.audio = match font {
            Ok(font) => {
                self.soundfont = Some(Arc::clone(&font));
                let start = [
                    PlayerCommand::Volume(self.settings.volume),
                    PlayerCommand::Loop(loop_region),
                ];
                let song = self.settings.apply_to(song);
                match AudioOutput::open(&font, song.clone(), &start) {
                    Ok(output) => Audio::Open(Box::new(output)),
                    // No device: the playhead still runs, for a MIDI output.
                    Err(error) => match AudioOutput::silent(&font, song, &start) {
                        Ok(output) => {
                            self.silent_because = Some(format!(
                                "no audio output ({error}): playing silently; a MIDI output \
                                 still plays, and saving works"
                            ));
                            Audio::Open(Box::new(output))
                        }
                        Err(_) => Audio::Unavailable(format!(
                            "no audio output ({error}); saving still works"
                        )),
                    },
                }
            }
            Err(error) => Audio::Unavailable(error.to_string()),
        };
    }

    /// Why playback runs without sound, when it does.
    pub fn silent_because(&self) -> Option<&str> {
        self.silent_because.as_deref()
    }

    /// Why sound cannot play, when it cannot.
    pub fn problem(&self) -> Option<&str> {
        match &self.audio {
            Audio::Unavailable(reason) => Some(reason),
            Audio::Disabled => Some("sound is off in this mode"),
            Audio::Closed | Audio::Open(_) => None,
        }
    }

    /// The open output's control (its keyboard queue and event tap).
    pub fn live_control(&mut self) -> Option<&mut crate::audio::live::LiveControl> {
        match &mut self.audio {
            Audio::Open(output) => Some(output.control_mut()),
            _ => None,
        }
    }

    /// The playhead (steps) while sound plays.
    pub fn playhead(&self) -> Option<f64> {
        match &self.audio {
            Audio::Open(output) if output.status().is_playing() => Some(output.status().position()),
            _ => None,
        }
    }

    /// Sends a command to the playing synth; an error says why it was lost.
    pub fn send(&mut self, command: PlayerCommand) -> Result<(), QueueFull> {
        match &mut self.audio {
            Audio::Open(output) => output.send(command),
            _ => Ok(()),
        }
    }

    /// Plays `song` from the same playhead from now on. When the audio
    /// thread cannot take it yet, it is kept and sent again by
    /// [`retry`](Self::retry); the error says so.
    pub fn play_song(&mut self, song: Song) -> Result<(), QueueFull> {
        let song = self.settings.apply_to(song);
        let Audio::Open(output) = &mut self.audio else {
            return Ok(());
        };
        match output.replace_song(song) {
            Ok(()) => {
                self.unsent = None;
                Ok(())
            }
            Err(refused) => {
                self.unsent = Some(refused.into_song());
                Err(QueueFull)
            }
        }
    }

    /// Sends a refused song again; true once nothing waits.
    pub fn retry(&mut self) -> bool {
        let (Some(song), Audio::Open(output)) = (self.unsent.take(), &mut self.audio) else {
            return true;
        };
        match output.replace_song(song) {
            Ok(()) => true,
            Err(refused) => {
                self.unsent = Some(refused.into_song());
                false
            }
        }
    }

    /// Whether a refused song waits to be sent.
    pub fn has_unsent(&self) -> bool {
        self.unsent.is_some()
    }

    /// New tempo, volume or looping for the playing synth; a new
    /// instrument needs the song again (`true`).
    pub fn change(
        &mut self,
        settings: TransportSettings,
        loop_region: Option<(f64, f64)>,
    ) -> Result<bool, QueueFull> {
        let before = std::mem::replace(&mut self.settings, settings);
        if settings.bpm != before.bpm {
            self.send(PlayerCommand::Tempo(settings.bpm))?;
        }
        if settings.volume != before.volume {
            self.send(PlayerCommand::Volume(settings.volume))?;
        }
        if settings.looping != before.looping {
            self.send(PlayerCommand::Loop(loop_region))?;
        }
        Ok(settings.program != before.program)
    }
}
