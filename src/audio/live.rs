//! The real-time half of live playback, with no device: what the audio
//! callback owns and does, so tests drive it exactly as a sound card would.
//!
//! [`live_pair`] splits a [`Player`] into a [`LiveControl`] (the UI's side)
//! and a [`LiveRenderer`] (the audio thread's). They talk through lock-free
//! queues of small [`PlayerCommand`]s and whole new songs; songs the audio
//! thread lets go of travel back on a third queue, so they are freed on the
//! UI side. The renderer never allocates, locks, prints or blocks. The
//! playhead, state and counters are atomics any thread reads without a lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::player::{Player, PlayerCommand, Song};
use crate::live_midi::LiveMessage;

/// Frames the renderer synthesises per call; larger device buffers are
/// filled in several calls.
pub const SCRATCH_FRAMES: usize = 1024;
/// Commands and songs that may wait for the next callback.
const QUEUE_CAPACITY: usize = 64;

/// What the audio thread reports, readable from any thread without locks.
#[derive(Debug)]
pub struct PlaybackStatus {
    position_bits: AtomicU64,
    playing: AtomicBool,
    finished: AtomicBool,
    underruns: AtomicU64,
    stream_errors: AtomicU64,
    frames: AtomicU64,
    /// Frames rendered before the first non-silent sample (u64::MAX: none yet).
    first_sound_frame: AtomicU64,
    /// Songs handed over and never played because a newer one came with them.
    songs_skipped: AtomicU64,
}

impl Default for PlaybackStatus {
    fn default() -> Self {
        Self {
            position_bits: AtomicU64::new(0),
            playing: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            underruns: AtomicU64::new(0),
            stream_errors: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            first_sound_frame: AtomicU64::new(u64::MAX),
            songs_skipped: AtomicU64::new(0),
        }
    }
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

    /// Counts an error the device reported: an underrun or something worse.
    pub fn count_error(&self, underrun: bool) {
        let counter = if underrun {
            &self.underruns
        } else {
            &self.stream_errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames the renderer has written.
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

    /// Songs replaced by a newer one before they were ever played.
    pub fn songs_skipped(&self) -> u64 {
        self.songs_skipped.load(Ordering::Relaxed)
    }
}

/// Why a song or command did not reach the audio thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the audio thread has not taken the last {QUEUE_CAPACITY} messages (the sound output \
     stalled); what plays is out of date"
)]
pub struct QueueFull;

/// A song the audio thread could not take yet, handed back to send again.
#[derive(Debug)]
pub struct SongRefused(Box<Song>);

impl SongRefused {
    pub fn into_song(self) -> Song {
        *self.0
    }
}

/// The UI's side: sends commands and songs, frees what comes back; and,
/// to hand to other threads once, the keyboard's way in and the MIDI
/// output's way out.
#[derive(Debug)]
pub struct LiveControl {
    commands: rtrb::Producer<PlayerCommand>,
    songs: rtrb::Producer<Box<Song>>,
    retired: rtrb::Consumer<Box<Song>>,
    status: Arc<PlaybackStatus>,
    keyboard: Option<rtrb::Producer<LiveMessage>>,
    tap: Option<rtrb::Consumer<[u8; 3]>>,
}

/// Keyboard messages queued between two audio blocks; MIDI bytes the
/// player fires between two reads of its tap.
const KEYBOARD_CAPACITY: usize = 1024;
const TAP_CAPACITY: usize = 8192;

impl LiveControl {
    /// Frees the songs the audio thread has let go of; returns how many.
    pub fn collect_retired(&mut self) -> usize {
        let mut freed = 0;
        while self.retired.pop().is_ok() {
            freed += 1;
        }
        freed
    }

    /// Sends a command to carry out before the next block.
    pub fn send(&mut self, command: PlayerCommand) -> Result<(), QueueFull> {
        self.collect_retired();
        self.commands.push(command).map_err(|_| QueueFull)
    }

    /// Replaces the playing song at the same playhead, without stopping;
    /// of several songs sent between two blocks only the newest plays.
    pub fn replace_song(&mut self, song: Song) -> Result<(), SongRefused> {
        self.collect_retired();
        self.songs
            .push(Box::new(song))
            .map_err(|rtrb::PushError::Full(song)| SongRefused(song))
    }

    pub fn status(&self) -> &PlaybackStatus {
        &self.status
    }

    /// The status, to share with another thread (the device's error callback).
    pub fn status_handle(&self) -> &Arc<PlaybackStatus> {
        &self.status
    }

    /// The queue a live keyboard's messages go in, to sound before the next
    /// block (once; then `None`).
    pub fn take_keyboard(&mut self) -> Option<rtrb::Producer<LiveMessage>> {
        self.keyboard.take()
    }

    /// The queue of MIDI bytes the player fires, for a MIDI output (once;
    /// then `None`).
    pub fn take_tap(&mut self) -> Option<rtrb::Consumer<[u8; 3]>> {
        self.tap.take()
    }
}

/// The audio thread's side: owns the player and its scratch buffers.
pub struct LiveRenderer {
    player: Player,
    keyboard: rtrb::Consumer<LiveMessage>,
    commands: rtrb::Consumer<PlayerCommand>,
    songs: rtrb::Consumer<Box<Song>>,
    retired: rtrb::Producer<Box<Song>>,
    status: Arc<PlaybackStatus>,
    left: Vec<f32>,
    right: Vec<f32>,
}

impl std::fmt::Debug for LiveRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveRenderer")
            .field("player", &self.player)
            .finish_non_exhaustive()
    }
}

/// Splits `player` into the UI's control and the audio thread's renderer.
pub fn live_pair(mut player: Player) -> (LiveControl, LiveRenderer) {
    let (commands, command_rx) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
    let (keyboard, keyboard_rx) = rtrb::RingBuffer::new(KEYBOARD_CAPACITY);
    let (tap, tap_rx) = rtrb::RingBuffer::new(TAP_CAPACITY);
    player.set_tap(tap);
    let (songs, song_rx) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
    // Room for every queued song plus the one playing, so the audio thread
    // never has to free one itself.
    let (retired_tx, retired) = rtrb::RingBuffer::new(QUEUE_CAPACITY * 2);
    let status = Arc::new(PlaybackStatus::default());
    let control = LiveControl {
        commands,
        songs,
        retired,
        status: Arc::clone(&status),
        keyboard: Some(keyboard),
        tap: Some(tap_rx),
    };
    let renderer = LiveRenderer {
        player,
        keyboard: keyboard_rx,
        commands: command_rx,
        songs: song_rx,
        retired: retired_tx,
        status,
        left: vec![0.0; SCRATCH_FRAMES],
        right: vec![0.0; SCRATCH_FRAMES],
    };
    (control, renderer)
}

impl LiveRenderer {
    /// The song loaded now.
    pub fn song(&self) -> &Song {
        self.player.song()
    }

    /// Carries out the queued commands and loads the newest queued song
    /// (older ones, never heard, go straight back).
    fn take_news(&mut self) {
        while let Ok(message) = self.keyboard.pop() {
            self.player.play_live(message);
        }
        while let Ok(command) = self.commands.pop() {
            self.player.apply(command);
        }
        let mut newest = None;
        while let Ok(song) = self.songs.pop() {
            if let Some(skipped) = newest.replace(song) {
                self.status.songs_skipped.fetch_add(1, Ordering::Relaxed);
                self.retire(skipped);
            }
        }
        if let Some(song) = newest {
            let old = self.player.replace_song(song);
            self.retire(old);
        }
    }

    fn retire(&mut self, song: Box<Song>) {
        // The queue has room for every song sent; were it full, the song
        // would be dropped here, the only way this thread could free memory.
        let _ = self.retired.push(song);
    }

    /// Fills an interleaved buffer of `channels` channels (left, right,
    /// then silence), converting each sample with `convert`.
    pub fn fill<T>(&mut self, data: &mut [T], channels: usize, convert: impl Fn(f32) -> T) {
        self.take_news();
        let channels = channels.max(1);
        for frames in data.chunks_mut(SCRATCH_FRAMES * channels) {
            let count = frames.len() / channels;
            let (left, right) = (&mut self.left[..count], &mut self.right[..count]);
            self.player.render(left, right);
            for ((frame, &l), &r) in frames.chunks_exact_mut(channels).zip(&*left).zip(&*right) {
                for (channel, sample) in frame.iter_mut().enumerate() {
                    *sample = convert(match channel {
                        0 => l,
                        1 => r,
                        _ => 0.0,
                    });
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
