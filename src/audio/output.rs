//! Live playback on the default output device (cpal).
//!
//! The audio callback owns the [`Player`] and two scratch buffers allocated
//! before the stream starts; it drains a lock-free queue of small
//! [`PlayerCommand`]s and a second one that hands it whole new songs (the old
//! song goes back on a third queue, so it is freed here, not on the audio
//! thread). It never allocates, locks, prints or blocks. The playhead, state
//! and counters are atomics that any thread reads without a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cpal::traits::{DeviceTrait as _, HostTrait as _, StreamTrait as _};
use cpal::{FromSample, SizedSample};
use rustysynth::SoundFont;

use super::player::{Player, PlayerCommand, PlayerError, Song};

/// Frames the callback renders per synth call; larger device buffers are
/// filled in several calls.
const SCRATCH_FRAMES: usize = 1024;
/// Commands and songs that may wait for the next callback.
const QUEUE_CAPACITY: usize = 64;

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

/// What the audio thread reports, readable from any thread without locks.
#[derive(Debug, Default)]
pub struct PlaybackStatus {
    position_bits: AtomicU64,
    playing: AtomicBool,
    finished: AtomicBool,
    underruns: AtomicU64,
    stream_errors: AtomicU64,
    frames: AtomicU64,
    /// Frames rendered before the first non-silent sample (u64::MAX: none yet).
    first_sound_frame: AtomicU64,
}

impl PlaybackStatus {
    /// Playhead in steps.
    pub fn position(&self) -> f64 {
        f64::from_bits(self.position_bits.load(Ordering::Relaxed))
    }

    pub fn is_playing(&self) -> bool {
        self.playing.load(Ordering::Relaxed)
    }

    /// True once playback ran past the end without a loop.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    /// Buffer underruns (and overruns) the device reported.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }

    /// Other stream errors, such as the device going away.
    pub fn stream_errors(&self) -> u64 {
        self.stream_errors.load(Ordering::Relaxed)
    }

    /// Frames the callback has written.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Frames written before the first audible sample, once there was one.
    pub fn first_sound_frame(&self) -> Option<u64> {
        match self.first_sound_frame.load(Ordering::Relaxed) {
            u64::MAX => None,
            frame => Some(frame),
        }
    }
}

/// A running output stream and the handles to steer it.
pub struct AudioOutput {
    stream: cpal::Stream,
    commands: rtrb::Producer<PlayerCommand>,
    songs: rtrb::Producer<Box<Song>>,
    retired: rtrb::Consumer<Box<Song>>,
    status: Arc<PlaybackStatus>,
    sample_rate: u32,
    channels: u16,
    device_name: String,
}

impl std::fmt::Debug for AudioOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioOutput")
            .field("device", &self.device_name)
            .field("sample_rate", &self.sample_rate)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What the callback owns.
struct Callback {
    player: Player,
    commands: rtrb::Consumer<PlayerCommand>,
    songs: rtrb::Consumer<Box<Song>>,
    retired: rtrb::Producer<Box<Song>>,
    status: Arc<PlaybackStatus>,
    left: Vec<f32>,
    right: Vec<f32>,
    channels: usize,
}

impl Callback {
    fn fill<T: SizedSample + FromSample<f32>>(&mut self, data: &mut [T]) {
        while let Ok(command) = self.commands.pop() {
            self.player.apply(command);
        }
        if let Ok(song) = self.songs.pop() {
            let old = self.player.replace_song(song);
            // The queue has room for every song sent; if not, the old song
            // is dropped here, which is the only way this callback frees memory.
            let _ = self.retired.push(old);
        }
        let channels = self.channels.max(1);
        for frames in data.chunks_mut(SCRATCH_FRAMES * channels) {
            let count = frames.len() / channels;
            let (left, right) = (&mut self.left[..count], &mut self.right[..count]);
            self.player.render(left, right);
            for ((frame, &l), &r) in frames.chunks_exact_mut(channels).zip(&*left).zip(&*right) {
                for (channel, sample) in frame.iter_mut().enumerate() {
                    let value = match channel {
                        0 => l,
                        1 => r,
                        _ => 0.0,
                    };
                    *sample = T::from_sample(value);
                }
            }
            let written = self.status.frames.load(Ordering::Relaxed);
            if self.status.first_sound_frame.load(Ordering::Relaxed) == u64::MAX
                && let Some(at) = left
                    .iter()
                    .zip(&*right)
                    .position(|(l, r)| l.abs() + r.abs() > 1e-4)
            {
                self.status
                    .first_sound_frame
                    .store(written + at as u64, Ordering::Relaxed);
            }
            self.status
                .frames
                .store(written + count as u64, Ordering::Relaxed);
        }
        let status = &self.status;
        status
            .position_bits
            .store(self.player.position().to_bits(), Ordering::Relaxed);
        status
            .playing
            .store(self.player.is_playing(), Ordering::Relaxed);
        status
            .finished
            .store(self.player.is_finished(), Ordering::Relaxed);
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

        let (commands, command_rx) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let (songs, song_rx) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let (retired_tx, retired) = rtrb::RingBuffer::new(QUEUE_CAPACITY * 2);
        let status = Arc::new(PlaybackStatus {
            first_sound_frame: AtomicU64::new(u64::MAX),
            ..PlaybackStatus::default()
        });
        let mut player = Player::new(soundfont, sample_rate, Box::new(song), true)?;
        for &command in start {
            player.apply(command);
        }
        let callback = Callback {
            player,
            commands: command_rx,
            songs: song_rx,
            retired: retired_tx,
            status: Arc::clone(&status),
            left: vec![0.0; SCRATCH_FRAMES],
            right: vec![0.0; SCRATCH_FRAMES],
            channels: usize::from(channels),
        };
        let errors = Arc::clone(&status);
        let on_error = move |error: cpal::Error| {
            if error.kind() == cpal::ErrorKind::Xrun {
                errors.underruns.fetch_add(1, Ordering::Relaxed);
            } else {
                errors.stream_errors.fetch_add(1, Ordering::Relaxed);
            }
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
            stream,
            commands,
            songs,
            retired,
            status,
            sample_rate,
            channels,
            device_name,
        })
    }

    /// Frees songs the audio thread has let go of.
    fn collect_retired(&mut self) {
        while self.retired.pop().is_ok() {}
    }

    /// Sends a command; false if the audio thread has not kept up with the
    /// queue (the command is dropped).
    pub fn send(&mut self, command: PlayerCommand) -> bool {
        self.collect_retired();
        self.commands.push(command).is_ok()
    }

    /// Replaces the playing song at the same playhead, without stopping.
    pub fn replace_song(&mut self, song: Song) -> bool {
        self.collect_retired();
        self.songs.push(Box::new(song)).is_ok()
    }

    pub fn status(&self) -> &PlaybackStatus {
        &self.status
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
        let _ = self.stream.pause();
    }
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
            move |data: &mut [T], _: &cpal::OutputCallbackInfo| callback.fill(data),
            on_error,
            None,
        )
        .map_err(|e| OutputError::Stream(e.to_string()))
}
