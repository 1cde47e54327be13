//! Live playback on the default output device (cpal): the device edge of
//! [`live`](super::live), whose renderer the audio callback owns.

use cpal::traits::{DeviceTrait as _, HostTrait as _, StreamTrait as _};
use cpal::{FromSample, SizedSample};
use rustysynth::SoundFont;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::live::{LiveControl, LiveRenderer, PlaybackStatus, QueueFull, SongRefused, live_pair};
use super::player::{Player, PlayerCommand, PlayerError, Song};

/// Why live playback cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    #[error("no audio output device")]
    NoDevice,
    #[error("the audio output is not usable: {0}")]
    Config(String),
    #[error("the audio output refused the stream: {0}")]
    Stream(String),
    #[error("the audio output format {0} is not supported")]
    Format(String),
    #[error(transparent)]
    Synth(#[from] PlayerError),
}

/// What drives the player: a device's stream, or, where there is no device,
/// a thread that runs it on the wall clock and throws the samples away (the
/// playhead moves and a MIDI output still plays).
enum Driver {
    Device(cpal::Stream),
    Clock { _running: SilentClock },
}

/// The thread behind [`Driver::Clock`]; stopped when dropped.
struct SilentClock {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SilentClock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The silent clock's rate and how often it wakes.
const CLOCK_RATE: u32 = 44_100;
const CLOCK_TICK: std::time::Duration = std::time::Duration::from_millis(2);

/// A running output stream and the handles to steer it.
pub struct AudioOutput {
    driver: Driver,
    control: LiveControl,
    sample_rate: u32,
    channels: u16,
    device_name: String,
}

impl std::fmt::Debug for AudioOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioOutput")
            .field("device", &self.device_name)
            .field("sample_rate", &self.sample_rate)
            .field("status", self.control.status())
            .finish_non_exhaustive()
    }
}

impl AudioOutput {
    /// Opens the default output device with `song` loaded, carrying out
    /// `start` (say, `Play`) before the first sample so nothing is skipped.
    pub fn open(
        soundfont: &Arc<SoundFont>,
        song: Song,
        start: &[PlayerCommand],
    ) -> Result<Self, OutputError> {
        let host = cpal::default_host();
        let device = host.default_output_device().ok_or(OutputError::NoDevice)?;
        let device_name = device
            .description()
            .map_or_else(|_| "default".to_owned(), |d| d.to_string());
        let supported = device
            .default_output_config()
            .map_err(|e| OutputError::Config(e.to_string()))?;
        let config = supported.config();
        let sample_rate = config.sample_rate;
        let channels = config.channels;

        let mut player = Player::new(soundfont, sample_rate, Box::new(song), true)?;
        for &command in start {
            player.apply(command);
        }
        let (control, renderer) = live_pair(player);
        let status = Arc::clone(control.status_handle());
        let on_error = move |error: cpal::Error| {
            status.count_error(error.kind() == cpal::ErrorKind::Xrun);
        };
        let callback = Callback {
            renderer,
            channels: usize::from(channels),
        };
        let stream = match supported.sample_format() {
            cpal::SampleFormat::F32 => build::<f32>(&device, config, callback, on_error),
            cpal::SampleFormat::I16 => build::<i16>(&device, config, callback, on_error),
            cpal::SampleFormat::U16 => build::<u16>(&device, config, callback, on_error),
            cpal::SampleFormat::I32 => build::<i32>(&device, config, callback, on_error),
            other => return Err(OutputError::Format(other.to_string())),
        }?;
        stream
            .play()
            .map_err(|e| OutputError::Stream(e.to_string()))?;
        Ok(Self {
            driver: Driver::Device(stream),
            control,
            sample_rate,
            channels,
            device_name,
        })
    }

    /// The player with no device: a thread runs it on the wall clock,
    /// silently, so the playhead moves and a MIDI output plays.
    pub fn silent(
        soundfont: &Arc<SoundFont>,
        song: Song,
        start: &[PlayerCommand],
    ) -> Result<Self, OutputError> {
        let mut player = Player::new(soundfont, CLOCK_RATE, Box::new(song), false)?;
        for &command in start {
            player.apply(command);
        }
        let (control, mut renderer) = live_pair(player);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("cadenza-silent-clock".to_owned())
                .spawn(move || {
                    let mut buffer = vec![0.0f32; 2 * CLOCK_RATE as usize / 10];
                    let mut last = std::time::Instant::now();
                    let mut owed = 0.0f64;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(CLOCK_TICK);
                        let now = std::time::Instant::now();
                        owed += now.duration_since(last).as_secs_f64() * f64::from(CLOCK_RATE);
                        last = now;
                        let frames = (owed as usize).min(buffer.len() / 2);
                        owed -= frames as f64;
                        renderer.fill(&mut buffer[..frames * 2], 2, |sample| sample);
                    }
                })
                .map_err(|e| OutputError::Stream(e.to_string()))?
        };
        Ok(Self {
            driver: Driver::Clock {
                _running: SilentClock {
                    stop,
                    thread: Some(thread),
                },
            },
            control,
            sample_rate: CLOCK_RATE,
            channels: 2,
            device_name: "no device (silent)".to_owned(),
        })
    }

    /// Sends a command to the audio thread.
    pub fn send(&mut self, command: PlayerCommand) -> Result<(), QueueFull> {
        self.control.send(command)
    }

    /// Replaces the playing song at the same playhead, without stopping.
    pub fn replace_song(&mut self, song: Song) -> Result<(), SongRefused> {
        self.control.replace_song(song)
    }

    pub fn status(&self) -> &PlaybackStatus {
        self.control.status()
    }

    /// The control, to hand its keyboard queue and event tap on.
    pub fn control_mut(&mut self) -> &mut LiveControl {
        &mut self.control
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Stops the stream (dropping the handle does the same).
    pub fn close(self) {
        if let Driver::Device(stream) = &self.driver {
            let _ = stream.pause();
        }
    }
}

/// What the audio callback owns: the renderer and the device's layout.
struct Callback {
    renderer: LiveRenderer,
    channels: usize,
}

fn build<T: SizedSample + FromSample<f32>>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut callback: Callback,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, OutputError> {
    device
        .build_output_stream::<T, _, _>(
            config,
            move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
                callback
                    .renderer
                    .fill(data, callback.channels, T::from_sample);
            },
            on_error,
            None,
        )
        .map_err(|e| OutputError::Stream(e.to_string()))
}
