//! Standard MIDI files to and from [`PianoRoll`]s. midly is used here and nowhere else.
//!
//! Import reads formats 0, 1 and 2 with metrical (PPQ) or SMPTE timing, in two
//! stages: [`read_notes`] pairs note-ons with note-offs into [`RawNote`]s in
//! ticks, exactly as the file says; [`import`] then quantises them onto the
//! roll's grid in beats, so the grid does not depend on tempo.
//!
//! What is fatal and what is tolerated is written on [`ImportError`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use midly::num::{u4, u7, u15, u24, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Timing, TrackEvent, TrackEventKind};
use serde::Serialize;

use crate::arrangement::{Arrangement, Part, PlayedNote, TICKS_PER_STEP};
use crate::atomic::write_atomically;
use crate::meter::TimeSignature;
use crate::roll::{
    DEFAULT_STEPS_PER_QUARTER, MAX_STEPS, PianoRoll, Pitch, RollError, RollMeta, RollNote, Tempo,
};

/// The MIDI channel (0-based) that General MIDI reserves for drums: "channel 10".
pub const DRUM_CHANNEL: u8 = 9;

/// Why bytes could not be read as a MIDI file.
///
/// # What is fatal and what is tolerated
/// Import is lenient where a musician would still want the music and strict where
/// nothing sensible can be read:
/// - **Errors** (the variants below): an empty file, a gzip-compressed file, bytes
///   that are not a Standard MIDI File (no `MThd` or RMID header), a header that
///   cannot be read, PPQ 0 or an SMPTE rate with 0 ticks per frame, and a file
///   with no track at all.
/// - **Tolerated, and counted in the [`ImportReport`]**: a chunk or track cut
///   short (the bytes that are there are read, the rest of that track is dropped,
///   and the track counts as damaged), unknown chunks, running status, sysex and
///   meta events other than tempo and time signature (skipped), a time
///   signature no metre can have (skipped), a note-on with velocity 0 (a
///   note-off), a note-off with no open note (ignored), overlapping notes of
///   one pitch (a note-off ends the earliest open one; in the roll they merge
///   but keep both onsets), notes with no note-off (they end at their track's
///   last event), drum-channel notes (dropped unless asked for), pitches outside
///   21..=126 (dropped, never wrapped), and anything past [`MAX_STEPS`] (cut
///   there).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// A gzip stream (magic bytes 1f 8b), as some archives ship MIDI files.
    #[error("the file is gzip-compressed; decompress it first (gunzip) and open the .mid inside")]
    Gzipped,
    /// Neither an `MThd` nor an RMID header.
    #[error("not a Standard MIDI File (it does not start with an MThd or RIFF/RMID header)")]
    NotMidi,
    /// The header or chunk structure is broken beyond reading.
    #[error("unreadable MIDI structure: {0}")]
    Malformed(String),
    /// Metrical timing with 0 ticks per quarter note.
    #[error("the header says 0 ticks per quarter note, so no event has a time")]
    ZeroPpq,
    /// SMPTE timing with 0 ticks per frame.
    #[error("the header says 0 ticks per SMPTE frame, so no event has a time")]
    ZeroSmpteResolution,
    /// The header is fine but the file holds no track chunk.
    #[error("the file holds no tracks")]
    NoTracks,
    /// The options asked for an impossible grid.
    #[error(transparent)]
    Roll(#[from] RollError),
}

/// A MIDI file operation that failed, with the file it was about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MidiFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", path.display())]
    Import { path: PathBuf, source: ImportError },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How to turn a MIDI file into a roll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportOptions {
    /// Grid resolution, 1..=24.
    pub steps_per_quarter: u8,
    /// Keep notes on channel 10 (General MIDI drums).
    pub include_drums: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            steps_per_quarter: DEFAULT_STEPS_PER_QUARTER,
            include_drums: false,
        }
    }
}

/// How to write a roll as MIDI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Note-on velocity, 1..=127, of notes that have none of their own (drawn
    /// or generated with no notes before them in their part), and of every
    /// note when `merged`.
    pub velocity: u8,
    /// Write the roll's cells as one track (the output before parts were
    /// kept) instead of one track per part.
    pub merged: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            velocity: 100,
            merged: false,
        }
    }
}

/// A note as the file states it, before any quantisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawNote {
    /// Absolute start, in ticks on the file's timeline.
    pub start_tick: u64,
    /// MIDI note number 0..=127.
    pub pitch: u8,
    /// MIDI channel, 0-based (9 is "channel 10").
    pub channel: u8,
    /// Absolute end, in ticks.
    pub end_tick: u64,
    pub velocity: u8,
    /// Index of the track chunk it came from.
    pub track: u16,
    /// False when no note-off came and the note was ended at its track's last event.
    pub closed: bool,
}

/// How the file measures time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileTiming {
    /// Ticks per quarter note.
    Metrical { ppq: u16 },
    /// SMPTE frames per second and ticks per frame.
    Smpte { fps: f32, ticks_per_frame: u8 },
}

impl std::fmt::Display for FileTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Metrical { ppq } => write!(f, "{ppq} ticks per quarter"),
            Self::Smpte {
                fps,
                ticks_per_frame,
            } => write!(f, "SMPTE {fps} fps x {ticks_per_frame} ticks"),
        }
    }
}

/// Everything [`read_notes`] found in a file.
#[derive(Clone, Debug)]
pub struct MidiNotes {
    /// 0, 1 or 2.
    pub format: u8,
    pub timing: FileTiming,
    pub tracks: usize,
    /// Every note, sorted by start tick, pitch, channel, end tick.
    pub notes: Vec<RawNote>,
    /// Tempo map: (tick, tempo), sorted by tick; empty when the file sets none.
    pub tempo_changes: Vec<(u64, Tempo)>,
    /// (tick, signature) of every valid time-signature event, sorted by tick.
    pub time_signatures: Vec<(u64, TimeSignature)>,
    /// (tick, channel 0-based, program) of every program change, in file order.
    pub program_changes: Vec<(u64, u8, u8)>,
    /// Each track's first name event (empty when it has none), by track index.
    pub track_names: Vec<String>,
    /// The tick of the last event of the longest track.
    pub end_tick: u64,
    /// Tracks whose bytes ended early or broke off (no end-of-track event).
    pub damaged_tracks: usize,
}

/// Notes left out of the roll, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DroppedNotes {
    /// Pitch below 21 or above 126.
    pub out_of_range: usize,
    /// On channel 10 while drums were excluded.
    pub drums: usize,
    /// Starting at or after the [`MAX_STEPS`] limit.
    pub past_length_limit: usize,
}

/// A channel and the program it used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelProgram {
    /// 1..=16, as musicians count channels.
    pub channel: u8,
    /// General MIDI program 0..=127.
    pub program: u8,
}

/// What an import did, for the CLI and the GUI to show.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportReport {
    pub format: u8,
    pub timing: FileTiming,
    pub tracks: usize,
    /// Tracks cut short or broken off; their readable part was kept.
    pub damaged_tracks: usize,
    /// Notes found in the file.
    pub notes_read: usize,
    /// Notes that made it into the roll.
    pub notes_kept: usize,
    pub dropped: DroppedNotes,
    /// Notes that had no note-off and were ended at their track's last event.
    pub notes_without_note_off: usize,
    /// Channels (1..=16) that hold notes.
    pub channels: Vec<u8>,
    /// Distinct program changes seen.
    pub programs: Vec<ChannelProgram>,
    /// Tempo events in the file.
    pub tempo_changes: usize,
    /// Tempo at the start, in quarter notes per minute.
    pub initial_bpm: f64,
    /// Parts (a track's notes on one channel) the arrangement keeps.
    pub parts: usize,
    /// Notes the arrangement keeps to play and write: the roll's, plus drums
    /// and pitches the roll has no row for.
    pub played_notes: usize,
    /// Valid time-signature events in the file.
    pub time_signatures: usize,
    /// Length of the roll, in steps.
    pub length_steps: usize,
    /// Length of the music in seconds, through the file's tempo map.
    pub length_seconds: f64,
    /// True when the music ran past [`MAX_STEPS`] and was cut there.
    pub truncated: bool,
}

/// Reads every note of a MIDI file, paired as the module docs say, in ticks.
///
/// In format 2 each track is its own sequence; they are laid end to end.
pub fn read_notes(bytes: &[u8]) -> Result<MidiNotes, ImportError> {
    let smf = smf_bytes(bytes)?;
    let (header, track_iter) = midly::parse(smf).map_err(|e| classify_parse_error(smf, &e))?;
    let timing = file_timing(header)?;
    let format = match header.format {
        Format::SingleTrack => 0,
        Format::Parallel => 1,
        Format::Sequential => 2,
    };

    let mut notes = Vec::new();
    let mut tempo_changes = Vec::new();
    let mut time_signatures = Vec::new();
    let mut program_changes = Vec::new();
    let mut track_names = Vec::new();
    let mut open: Vec<VecDeque<(u64, u8)>> = vec![VecDeque::new(); 16 * 128];
    let mut tracks = 0usize;
    let mut damaged_tracks = 0usize;
    let mut end_tick = 0u64;
    // Format 2 tracks play one after another: each starts where the last ended.
    let mut track_origin = 0u64;

    for track in track_iter {
        // midly only yields errors per track in strict mode; lenient mode skips.
        let Ok(events) = track else { continue };
        let track_index = u16::try_from(tracks).unwrap_or(u16::MAX);
        tracks += 1;
        track_names.push(String::new());
        let mut tick = track_origin;
        let mut saw_end = false;
        for event in events {
            let Ok(TrackEvent { delta, kind }) = event else {
                break;
            };
            tick += u64::from(delta.as_int());
            match kind {
                TrackEventKind::Midi { channel, message } => {
                    let channel = channel.as_int();
                    match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                            open[open_slot(channel, key.as_int())].push_back((tick, vel.as_int()));
                        }
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            let pitch = key.as_int();
                            if let Some((start_tick, velocity)) =
                                open[open_slot(channel, pitch)].pop_front()
                            {
                                notes.push(RawNote {
                                    start_tick,
                                    pitch,
                                    channel,
                                    end_tick: tick,
                                    velocity,
                                    track: track_index,
                                    closed: true,
                                });
                            }
                        }
                        MidiMessage::ProgramChange { program } => {
                            program_changes.push((tick, channel, program.as_int()));
                        }
                        _ => {}
                    }
                }
                TrackEventKind::Meta(MetaMessage::Tempo(micros)) => {
                    tempo_changes.push((tick, Tempo::from_micros_per_quarter(micros.as_int())));
                }
                TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, power, ..)) => {
                    time_signatures.extend(signature_event(numerator, power).map(|s| (tick, s)));
                }
                TrackEventKind::Meta(MetaMessage::TrackName(name)) => {
                    name_track(&mut track_names, name);
                }
                TrackEventKind::Meta(MetaMessage::EndOfTrack) => saw_end = true,
                _ => {}
            }
        }
        if !saw_end {
            damaged_tracks += 1;
        }
        close_open_notes(&mut open, &mut notes, tick, track_index);
        end_tick = end_tick.max(tick);
        if header.format == Format::Sequential {
            track_origin = tick;
        }
    }
    if tracks == 0 {
        return Err(ImportError::NoTracks);
    }
    notes.sort_unstable();
    tempo_changes.sort_by_key(|&(tick, _)| tick);
    time_signatures.sort_by_key(|&(tick, _)| tick);
    Ok(MidiNotes {
        format,
        timing,
        tracks,
        notes,
        tempo_changes,
        time_signatures,
        program_changes,
        track_names,
        end_tick,
        damaged_tracks,
    })
}

impl MidiNotes {
    /// Each note's start and end in seconds through the file's tempo map, in
    /// the order of [`Self::notes`].
    pub fn note_seconds(&self) -> Vec<(f64, f64)> {
        let time = TimeMap::new(self.timing, &self.tempo_changes);
        self.notes
            .iter()
            .map(|n| (time.seconds(n.start_tick), time.seconds(n.end_tick)))
            .collect()
    }

    /// Where the music ends: the last note-off or event, in ticks.
    pub fn last_tick(&self) -> u64 {
        let last_note = self.notes.iter().map(|n| n.end_tick).max();
        last_note.unwrap_or(0).max(self.end_tick)
    }

    /// Seconds at `tick` through the file's tempo map.
    pub fn seconds_at(&self, tick: u64) -> f64 {
        TimeMap::new(self.timing, &self.tempo_changes).seconds(tick)
    }

    /// The program set on `channel` (0-based) at or before `tick`; 0 when none was.
    pub fn program_at(&self, channel: u8, tick: u64) -> u8 {
        ChannelPrograms::new(&self.program_changes).at(channel, tick)
    }
}

/// A time-signature event's metre; a power past 6 (a 128th or finer) or a
/// numerator of 0 is none: skipped like any other broken meta event.
fn signature_event(numerator: u8, power: u8) -> Option<TimeSignature> {
    (power <= 6)
        .then(|| TimeSignature::new(numerator, 1 << power))
        .flatten()
}

/// Names the track being read after its first name event.
fn name_track(track_names: &mut [String], name: &[u8]) {
    if let Some(slot) = track_names.last_mut()
        && slot.is_empty()
    {
        *slot = String::from_utf8_lossy(name).trim().to_owned();
    }
}

fn open_slot(channel: u8, pitch: u8) -> usize {
    usize::from(channel) * 128 + usize::from(pitch)
}

/// Ends every note still open at the end of a track, at that track's last tick.
fn close_open_notes(
    open: &mut [VecDeque<(u64, u8)>],
    notes: &mut Vec<RawNote>,
    end_tick: u64,
    track: u16,
) {
    for (slot, queue) in open.iter_mut().enumerate() {
        for (start_tick, velocity) in queue.drain(..) {
            notes.push(RawNote {
                start_tick,
                pitch: (slot % 128) as u8,
                channel: (slot / 128) as u8,
                end_tick,
                velocity,
                track,
                closed: false,
            });
        }
    }
}

/// The Standard MIDI File inside `bytes`: the bytes themselves, or the `data`
/// chunk of an RMID (RIFF) wrapper. Also rejects an SMPTE division of -128
/// frames per second, which midly 0.5.3 negates with an overflow.
fn smf_bytes(bytes: &[u8]) -> Result<&[u8], ImportError> {
    let smf = match bytes {
        [] => return Err(ImportError::Empty),
        [0x1f, 0x8b, ..] => return Err(ImportError::Gzipped),
        [b'R', b'I', b'F', b'F', _, _, _, _, rest @ ..] => rmid_data(rest)?,
        _ => bytes,
    };
    if smf.starts_with(b"MThd") && smf.get(12) == Some(&0x80) {
        return Err(ImportError::Malformed(
            "invalid SMPTE frame rate (-128 frames per second)".to_owned(),
        ));
    }
    Ok(smf)
}

/// The `data` chunk of an RMID file, given the bytes after the RIFF header.
fn rmid_data(mut riff: &[u8]) -> Result<&[u8], ImportError> {
    let malformed = |what: &str| ImportError::Malformed(format!("RMID wrapper: {what}"));
    riff = riff
        .strip_prefix(b"RMID")
        .ok_or_else(|| malformed("not an RMID file"))?;
    while riff.len() >= 8 {
        let (id, rest) = riff.split_at(4);
        let (length, rest) = rest.split_at(4);
        let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
        let chunk = &rest[..length.min(rest.len())];
        if id == b"data" {
            return Ok(chunk);
        }
        // Chunks are padded to an even length.
        riff = rest.get(length + (length & 1)..).unwrap_or_default();
    }
    Err(malformed("no data chunk"))
}

fn classify_parse_error(bytes: &[u8], error: &midly::Error) -> ImportError {
    match bytes.get(..4) {
        Some(b"MThd" | b"RIFF") => ImportError::Malformed(error.kind().message().to_owned()),
        _ => ImportError::NotMidi,
    }
}

fn file_timing(header: Header) -> Result<FileTiming, ImportError> {
    match header.timing {
        Timing::Metrical(ppq) if ppq.as_int() == 0 => Err(ImportError::ZeroPpq),
        Timing::Metrical(ppq) => Ok(FileTiming::Metrical { ppq: ppq.as_int() }),
        Timing::Timecode(_, 0) => Err(ImportError::ZeroSmpteResolution),
        Timing::Timecode(fps, ticks_per_frame) => Ok(FileTiming::Smpte {
            fps: fps.as_f32(),
            ticks_per_frame,
        }),
    }
}

/// Converts ticks to beats and seconds through a file's timing and tempo map.
#[derive(Debug)]
struct TimeMap {
    timing: FileTiming,
    /// (tick, seconds at that tick, beats at that tick, tempo from there on).
    segments: Vec<(u64, f64, f64, Tempo)>,
}

impl TimeMap {
    fn new(timing: FileTiming, tempo_changes: &[(u64, Tempo)]) -> Self {
        let mut map = Self {
            timing,
            segments: vec![(0, 0.0, 0.0, Tempo::DEFAULT)],
        };
        for &(tick, tempo) in tempo_changes {
            let (seconds, beats) = (map.seconds(tick), map.beats(tick));
            if let Some(last) = map.segments.last_mut()
                && last.0 == tick
            {
                last.3 = tempo;
            } else {
                map.segments.push((tick, seconds, beats, tempo));
            }
        }
        map
    }

    fn segment(&self, tick: u64) -> &(u64, f64, f64, Tempo) {
        let index = self.segments.partition_point(|s| s.0 <= tick);
        &self.segments[index.saturating_sub(1)]
    }

    fn seconds(&self, tick: u64) -> f64 {
        let &(from, seconds, _, tempo) = self.segment(tick);
        let ticks = (tick - from) as f64;
        match self.timing {
            FileTiming::Metrical { ppq } => {
                seconds + ticks / f64::from(ppq) * f64::from(tempo.micros_per_quarter()) / 1e6
            }
            FileTiming::Smpte { .. } => tick as f64 / self.ticks_per_second(),
        }
    }

    fn beats(&self, tick: u64) -> f64 {
        let &(_, seconds_at, beats_at, tempo) = self.segment(tick);
        match self.timing {
            FileTiming::Metrical { ppq } => tick as f64 / f64::from(ppq),
            FileTiming::Smpte { .. } => {
                let seconds = tick as f64 / self.ticks_per_second();
                beats_at + (seconds - seconds_at) * 1e6 / f64::from(tempo.micros_per_quarter())
            }
        }
    }

    /// Where `tick` falls from grid step `step`, in [`TICKS_PER_STEP`]ths
    /// of a step (clamped to a few steps: past that the note was cut).
    fn offset_from_step(&self, tick: u64, step: usize, steps_per_quarter: u8) -> i32 {
        let fine = match self.timing {
            FileTiming::Metrical { ppq } => {
                tick as f64 * f64::from(steps_per_quarter) / f64::from(ppq)
            }
            FileTiming::Smpte { .. } => self.beats(tick) * f64::from(steps_per_quarter),
        };
        let offset = ((fine - step as f64) * f64::from(TICKS_PER_STEP)).round();
        let bound = f64::from(TICKS_PER_STEP * 4);
        offset.clamp(-bound, bound) as i32
    }

    /// The steps of a file's time signatures on the grid, those before `steps`.
    fn signature_steps(
        &self,
        signatures: &[(u64, TimeSignature)],
        steps_per_quarter: u8,
        steps: usize,
    ) -> Vec<(usize, TimeSignature)> {
        signatures
            .iter()
            .filter_map(|&(tick, signature)| {
                let step = usize::try_from(self.step(tick, steps_per_quarter)).ok()?;
                (step < steps).then_some((step, signature))
            })
            .collect()
    }

    /// Seconds at a (fractional) beat, through the tempo map.
    fn seconds_at_beats(&self, beats: f64) -> f64 {
        let index = self.segments.partition_point(|s| s.2 <= beats);
        let &(_, seconds, beats_at, tempo) = &self.segments[index.saturating_sub(1)];
        seconds + (beats - beats_at) * f64::from(tempo.micros_per_quarter()) / 1e6
    }

    /// The roll's tempo map on a grid of `steps_per_quarter`: the tempo of step
    /// 0 and (step, tempo) changes. Each change moves to its nearest step and
    /// each stretch between changes gets the tempo that makes it last as long
    /// as in the file, so every change step sounds at its time in the file
    /// (exact when the changes sit on the grid) and the music keeps its length.
    fn roll_tempo_map(&self, steps_per_quarter: u8, steps: usize) -> (Tempo, Vec<(usize, Tempo)>) {
        let spq = f64::from(steps_per_quarter);
        let mut boundaries: Vec<usize> = self
            .segments
            .iter()
            .skip(1)
            .map(|segment| usize::try_from(self.step(segment.0, steps_per_quarter)))
            .filter_map(Result::ok)
            .filter(|&step| step > 0 && step < steps)
            .collect();
        boundaries.dedup();
        let starts: Vec<usize> = std::iter::once(0).chain(boundaries).collect();
        let tempos: Vec<Tempo> = starts
            .iter()
            .enumerate()
            .map(|(i, &start)| match starts.get(i + 1) {
                Some(&next) => {
                    let (from, to) = (start as f64 / spq, next as f64 / spq);
                    let seconds = self.seconds_at_beats(to) - self.seconds_at_beats(from);
                    let micros = (seconds * 1e6 / (to - from)).round();
                    Tempo::from_micros_per_quarter(micros.clamp(1.0, f64::from(u32::MAX)) as u32)
                }
                // The last stretch runs on at the last tempo that reaches it.
                None => self
                    .segments
                    .iter()
                    .rev()
                    .find(|s| self.step(s.0, steps_per_quarter) <= start as u64)
                    .map_or(Tempo::DEFAULT, |s| s.3),
            })
            .collect();
        let changes = starts
            .iter()
            .copied()
            .zip(tempos.iter().copied())
            .skip(1)
            .collect();
        (tempos[0], changes)
    }

    fn ticks_per_second(&self) -> f64 {
        match self.timing {
            FileTiming::Smpte {
                fps,
                ticks_per_frame,
            } => f64::from(fps) * f64::from(ticks_per_frame),
            FileTiming::Metrical { .. } => f64::NAN,
        }
    }

    /// The grid step nearest to `tick`, saturating far past [`MAX_STEPS`].
    fn step(&self, tick: u64, steps_per_quarter: u8) -> u64 {
        match self.timing {
            // Exact integer rounding, half up: tick / (ppq / spq).
            FileTiming::Metrical { ppq } => {
                let numerator = u128::from(tick) * u128::from(steps_per_quarter) * 2;
                let denominator = u128::from(ppq) * 2;
                u64::try_from((numerator + u128::from(ppq)) / denominator).unwrap_or(u64::MAX)
            }
            FileTiming::Smpte { .. } => {
                let steps = (self.beats(tick) * f64::from(steps_per_quarter)).round();
                if steps >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    steps as u64
                }
            }
        }
    }
}

/// Imports MIDI bytes as a roll. Notes of all kept channels are merged.
pub fn import(
    bytes: &[u8],
    options: &ImportOptions,
) -> Result<(PianoRoll, ImportReport), ImportError> {
    let file = read_notes(bytes)?;
    roll_from_notes(&file, options)
}

/// Quantises notes read by [`read_notes`] onto a roll; see [`import`].
pub fn roll_from_notes(
    file: &MidiNotes,
    options: &ImportOptions,
) -> Result<(PianoRoll, ImportReport), ImportError> {
    let spq = options.steps_per_quarter;
    let time = TimeMap::new(file.timing, &file.tempo_changes);
    let limit = MAX_STEPS as u64;

    let mut dropped = DroppedNotes::default();
    let mut kept = Vec::with_capacity(file.notes.len());
    let mut played = Vec::with_capacity(file.notes.len());
    let mut parts = PartIndex::default();
    let programs = ChannelPrograms::new(&file.program_changes);
    let mut notes_per_channel = [0usize; 16];
    let mut first_note_tick = [u64::MAX; 16];
    let mut truncated = false;
    for note in &file.notes {
        let start = time.step(note.start_tick, spq);
        if start >= limit {
            dropped.past_length_limit += 1;
            truncated = true;
            continue;
        }
        let end = time.step(note.end_tick, spq).max(start + 1);
        if end > limit {
            truncated = true;
        }
        let (start, len) = (start as usize, (end.min(limit) - start) as usize);
        let drum = note.channel == DRUM_CHANNEL;
        let pitch = Pitch::from_midi(note.pitch);
        let in_roll = pitch.is_some() && (!drum || options.include_drums);
        played.push(PlayedNote {
            start,
            key: note.pitch,
            part: parts.index(note.track, note.channel, &file.track_names),
            len,
            velocity: note.velocity,
            program: programs.at(note.channel, note.start_tick),
            start_offset: time.offset_from_step(note.start_tick, start, spq),
            end_offset: time.offset_from_step(note.end_tick, start + len, spq),
            in_roll,
        });
        if drum && !options.include_drums {
            dropped.drums += 1;
            continue;
        }
        let Some(pitch) = pitch else {
            dropped.out_of_range += 1;
            continue;
        };
        notes_per_channel[usize::from(note.channel)] += 1;
        let first = &mut first_note_tick[usize::from(note.channel)];
        *first = (*first).min(note.start_tick);
        kept.push(RollNote { start, pitch, len });
    }

    let file_end = time.step(file.end_tick, spq);
    truncated |= file_end > limit;
    let steps = played
        .iter()
        .map(PlayedNote::end)
        .max()
        .unwrap_or(0)
        .max(file_end.min(limit) as usize);

    let (tempo, tempo_changes) = time.roll_tempo_map(spq, steps);
    let signature_changes = time.signature_steps(&file.time_signatures, spq, steps);
    let meta = RollMeta {
        steps_per_quarter: spq,
        tempo,
        program: main_program(file, &notes_per_channel, &first_note_tick),
        time_signature: opening_signature(&signature_changes),
    };
    let parts_found = parts.parts.len();
    let arrangement =
        Arrangement::new(parts.parts, played, tempo_changes, signature_changes, &meta)
            .map_err(|error| ImportError::Malformed(error.to_string()))?;
    let notes_kept = kept.len();
    let played_notes = arrangement.notes().len();
    let mut roll = PianoRoll::from_notes(steps, kept, meta)?;
    roll.set_arrangement(arrangement);

    let (channels, programs) = channels_and_programs(file);

    let report = ImportReport {
        format: file.format,
        timing: file.timing,
        tracks: file.tracks,
        damaged_tracks: file.damaged_tracks,
        notes_read: file.notes.len(),
        notes_kept,
        dropped,
        notes_without_note_off: file.notes.iter().filter(|n| !n.closed).count(),
        channels,
        programs,
        tempo_changes: file.tempo_changes.len(),
        initial_bpm: meta.tempo.bpm(),
        parts: parts_found,
        played_notes,
        time_signatures: file.time_signatures.len(),
        length_steps: roll.steps(),
        length_seconds: time.seconds(file.last_tick()),
        truncated,
    };
    Ok((roll, report))
}

/// The channels (1..=16) that hold notes and the distinct programs set on each.
fn channels_and_programs(file: &MidiNotes) -> (Vec<u8>, Vec<ChannelProgram>) {
    let channels: Vec<u8> = (0..16u8)
        .filter(|&c| file.notes.iter().any(|n| n.channel == c))
        .map(|c| c + 1)
        .collect();
    let mut programs: Vec<ChannelProgram> = file
        .program_changes
        .iter()
        .map(|&(_, channel, program)| ChannelProgram {
            channel: channel + 1,
            program,
        })
        .collect();
    programs.sort_by_key(|p| (p.channel, p.program));
    programs.dedup();
    (channels, programs)
}

/// The parts of a file as import meets them: one per (track, channel).
#[derive(Default)]
struct PartIndex {
    parts: Vec<Part>,
    by_key: std::collections::HashMap<(u16, u8), u16>,
}

impl PartIndex {
    fn index(&mut self, track: u16, channel: u8, names: &[String]) -> u16 {
        if let Some(&found) = self.by_key.get(&(track, channel)) {
            return found;
        }
        // Past u16::MAX parts (thousands of tracks on many channels) the rest
        // join the last one rather than fail the import.
        let Ok(index) = u16::try_from(self.parts.len()) else {
            return u16::MAX;
        };
        let named = names.get(usize::from(track)).filter(|n| !n.is_empty());
        let name = match named {
            // A track split over channels names each part by its channel too.
            Some(name) if self.by_key.keys().any(|k| k.0 == track) => {
                format!("{name} (channel {})", channel + 1)
            }
            Some(name) => name.clone(),
            None if channel == DRUM_CHANNEL => "Drums".to_owned(),
            None => format!("Track {} (channel {})", track + 1, channel + 1),
        };
        // Two tracks of one name (two staves called "Piano") are told apart.
        let name = if self.parts.iter().any(|p| p.name == name) {
            format!("{name} (track {})", track + 1)
        } else {
            name
        };
        self.by_key.insert((track, channel), index);
        self.parts.push(Part { name, channel });
        index
    }
}

/// Each channel's program changes in time order, to find the program in force
/// at a note.
struct ChannelPrograms {
    by_channel: Vec<Vec<(u64, u8)>>,
}

impl ChannelPrograms {
    fn new(changes: &[(u64, u8, u8)]) -> Self {
        let mut by_channel = vec![Vec::new(); 16];
        for &(tick, channel, program) in changes {
            if let Some(list) = by_channel.get_mut(usize::from(channel)) {
                list.push((tick, program));
            }
        }
        for list in &mut by_channel {
            // Stable: of two changes at one tick, the later in the file wins.
            list.sort_by_key(|&(tick, _)| tick);
        }
        Self { by_channel }
    }

    /// The program set on `channel` at or before `tick`; 0 (GM's piano) when
    /// none was.
    fn at(&self, channel: u8, tick: u64) -> u8 {
        let list = &self.by_channel[usize::from(channel & 15)];
        let index = list.partition_point(|&(at, _)| at <= tick);
        index.checked_sub(1).map_or(0, |i| list[i].1)
    }
}

/// The program of the channel that holds the most kept notes, as set before
/// (or, failing that, after) its first note; with no notes, the file's first
/// program change; 0 (piano) when none is set.
fn main_program(file: &MidiNotes, notes_per_channel: &[usize; 16], first_tick: &[u64; 16]) -> u8 {
    let Some(channel) = (0..16u8)
        .filter(|&c| notes_per_channel[usize::from(c)] > 0)
        .max_by_key(|&c| (notes_per_channel[usize::from(c)], std::cmp::Reverse(c)))
    else {
        return file.program_changes.first().map_or(0, |p| p.2);
    };
    let on_channel = || file.program_changes.iter().filter(|p| p.1 == channel);
    on_channel()
        .rfind(|p| p.0 <= first_tick[usize::from(channel)])
        .or_else(|| on_channel().next())
        .map_or(0, |p| p.2)
}

/// The signature of step 0: the last the file sets there, else the file's
/// first (a pickup written before the metre), else 4/4. Later changes ride
/// in the arrangement.
fn opening_signature(signatures: &[(usize, TimeSignature)]) -> TimeSignature {
    signatures
        .iter()
        .rfind(|s| s.0 == 0)
        .or_else(|| signatures.first())
        .map_or(TimeSignature::COMMON, |s| s.1)
}

/// Writes a roll as an SMF format-1 file: a conductor track (the tempo map and
/// the time signatures), then one track per part of its performance
/// ([`PianoRoll::performance`]) on the part's channel — drums on channel 10 —
/// with its name, its program changes and every note's velocity. With
/// [`ExportOptions::merged`], one track on channel 1 holds the roll's cells
/// instead, every note at [`ExportOptions::velocity`] and the roll's program.
pub fn export(roll: &PianoRoll, options: &ExportOptions) -> Vec<u8> {
    let meta = roll.meta();
    let ppq = u16::from(meta.steps_per_quarter) * TICKS_PER_STEP as u16;
    let end_tick = tick_of(roll.steps());
    // Built before the tracks, which borrow its part names.
    let performance = (!options.merged).then(|| roll.performance(options.velocity));
    let mut tracks = vec![conductor_track(roll, end_tick)];
    if let Some(performance) = &performance {
        for (index, part) in performance.parts.iter().enumerate() {
            let mut notes = performance.part_notes(index as u16).copied().peekable();
            if notes.peek().is_none() {
                continue;
            }
            tracks.push(part_track(
                part.name.as_bytes(),
                part.channel,
                notes,
                end_tick,
            ));
        }
        if performance.notes.is_empty() {
            // A silent roll still says its instrument.
            tracks.push(program_track(meta.program, end_tick));
        }
    } else {
        let notes = roll.notes().into_iter().map(|note| {
            let key = note.pitch.midi();
            PlayedNote::on_grid(note.start, note.len, key, 0, options.velocity, meta.program)
        });
        tracks.push(part_track(b"Piano roll", 0, notes, end_tick));
    }
    let smf = midly::Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(ppq))),
        tracks,
    };
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = smf.write(&mut bytes);
    bytes
}

fn tick_of(step: usize) -> u64 {
    step as u64 * u64::from(TICKS_PER_STEP)
}

/// The tempo map and the time signatures, from step 0.
fn conductor_track(roll: &PianoRoll, end_tick: u64) -> Vec<TrackEvent<'static>> {
    let meta = roll.meta();
    let arrangement = roll.arrangement();
    let mut events = vec![(0, TrackEventKind::Meta(MetaMessage::TrackName(b"Cadenza")))];
    let signatures = std::iter::once((0, meta.time_signature))
        .chain(arrangement.signature_changes().iter().copied());
    // A roll cut shorter than its arrangement (a kept continuation) ends
    // where its cells do.
    let last_step = roll.steps().max(1);
    for (step, signature) in signatures.filter(|&(step, _)| step < last_step) {
        // The fields are public: write 4/4 rather than an event no reader takes.
        let signature =
            TimeSignature::new(signature.numerator, signature.denominator).unwrap_or_default();
        events.push((
            tick_of(step),
            TrackEventKind::Meta(MetaMessage::TimeSignature(
                signature.numerator,
                signature.denominator_power(),
                24,
                8,
            )),
        ));
    }
    let tempos =
        std::iter::once((0, meta.tempo)).chain(arrangement.tempo_changes().iter().copied());
    for (step, tempo) in tempos.filter(|&(step, _)| step < last_step) {
        events.push((
            tick_of(step),
            TrackEventKind::Meta(MetaMessage::Tempo(u24::new(tempo.micros_per_quarter()))),
        ));
    }
    events.sort_by_key(|&(tick, _)| tick);
    with_deltas(events, end_tick)
}

/// An empty track on channel 1 that sets `program`.
fn program_track(program: u8, end_tick: u64) -> Vec<TrackEvent<'static>> {
    let set = TrackEventKind::Midi {
        channel: u4::new(0),
        message: MidiMessage::ProgramChange {
            program: u7::new(program.min(127)),
        },
    };
    with_deltas(
        vec![
            (
                0,
                TrackEventKind::Meta(MetaMessage::TrackName(b"Piano roll")),
            ),
            (0, set),
        ],
        end_tick,
    )
}

/// One part's notes on `channel`, with a program change wherever a note needs
/// another program than the one before.
fn part_track<'a>(
    name: &'a [u8],
    channel: u8,
    notes: impl Iterator<Item = PlayedNote>,
    end_tick: u64,
) -> Vec<TrackEvent<'a>> {
    let channel_number = u4::new(channel & 15);
    // (tick, order, key or program, velocity): note-offs sort before program
    // changes before note-ons at one tick, so a repeated note ends before it
    // starts again and each note starts under its program.
    let mut timed: Vec<(u64, u8, u8, u8)> = Vec::new();
    let mut program = None;
    for note in notes {
        if program != Some(note.program) {
            // The first program is set where the track begins.
            let at = if program.is_none() {
                0
            } else {
                note.start_tick()
            };
            timed.push((at, 1, note.program.min(127), 0));
            program = Some(note.program);
        }
        let key = note.key.min(127);
        timed.push((note.start_tick(), 2, key, note.velocity.clamp(1, 127)));
        timed.push((note.end_tick(), 0, key, 64));
    }
    timed.sort_unstable();
    let mut events = Vec::with_capacity(timed.len() + 1);
    events.push((0, TrackEventKind::Meta(MetaMessage::TrackName(name))));
    events.extend(timed.into_iter().map(|(tick, order, value, velocity)| {
        let message = match order {
            0 => MidiMessage::NoteOff {
                key: u7::new(value),
                vel: u7::new(velocity),
            },
            1 => MidiMessage::ProgramChange {
                program: u7::new(value),
            },
            _ => MidiMessage::NoteOn {
                key: u7::new(value),
                vel: u7::new(velocity),
            },
        };
        (
            tick,
            TrackEventKind::Midi {
                channel: channel_number,
                message,
            },
        )
    }));
    with_deltas(events, end_tick)
}

/// Turns absolute-tick events into a track with deltas and an end-of-track at `end_tick`.
fn with_deltas(events: Vec<(u64, TrackEventKind<'_>)>, end_tick: u64) -> Vec<TrackEvent<'_>> {
    let mut track = Vec::with_capacity(events.len() + 1);
    let mut last = 0u64;
    let end = std::iter::once((end_tick, TrackEventKind::Meta(MetaMessage::EndOfTrack)));
    for (tick, kind) in events.into_iter().chain(end) {
        let tick = tick.max(last);
        let mut delta = tick - last;
        // Deltas are 28-bit: bridge longer gaps with empty text events. Only a
        // roll near MAX_STEPS at a fine grid gets here.
        while delta > u64::from(u28::max_value().as_int()) {
            let step = u64::from(u28::max_value().as_int());
            track.push(TrackEvent {
                delta: u28::max_value(),
                kind: TrackEventKind::Meta(MetaMessage::Text(b"")),
            });
            delta -= step;
        }
        track.push(TrackEvent {
            delta: u28::new(delta as u32),
            kind,
        });
        last = tick;
    }
    track
}

/// Reads and imports a MIDI file.
pub fn import_file(
    path: &Path,
    options: &ImportOptions,
) -> Result<(PianoRoll, ImportReport), MidiFileError> {
    let bytes = std::fs::read(path).map_err(|source| MidiFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    import(&bytes, options).map_err(|source| MidiFileError::Import {
        path: path.to_owned(),
        source,
    })
}

/// Exports a roll to a MIDI file, atomically.
pub fn export_file(
    roll: &PianoRoll,
    path: &Path,
    options: &ExportOptions,
) -> Result<(), MidiFileError> {
    write_atomically(path, &export(roll, options)).map_err(|source| MidiFileError::Write {
        path: path.to_owned(),
        source,
    })
}
