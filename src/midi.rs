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
    /// Note-on velocity, 1..=127.
    pub velocity: u8,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self { velocity: 100 }
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
                    // A power past 6 (a 128th or finer) or a numerator of 0
                    // is no metre: skipped like any other broken meta event.
                    if let Some(signature) = (power <= 6)
                        .then(|| TimeSignature::new(numerator, 1 << power))
                        .flatten()
                    {
                        time_signatures.push((tick, signature));
                    }
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
        end_tick,
        damaged_tracks,
    })
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
    let mut notes_per_channel = [0usize; 16];
    let mut first_note_tick = [u64::MAX; 16];
    let mut truncated = false;
    for note in &file.notes {
        if note.channel == DRUM_CHANNEL && !options.include_drums {
            dropped.drums += 1;
            continue;
        }
        let Some(pitch) = Pitch::from_midi(note.pitch) else {
            dropped.out_of_range += 1;
            continue;
        };
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
        notes_per_channel[usize::from(note.channel)] += 1;
        let first = &mut first_note_tick[usize::from(note.channel)];
        *first = (*first).min(note.start_tick);
        kept.push(RollNote {
            start: start as usize,
            pitch,
            len: (end.min(limit) - start) as usize,
        });
    }

    let file_end = time.step(file.end_tick, spq);
    truncated |= file_end > limit;
    let steps = kept
        .iter()
        .map(RollNote::end)
        .max()
        .unwrap_or(0)
        .max(file_end.min(limit) as usize);

    let meta = RollMeta {
        steps_per_quarter: spq,
        tempo: time.segment(0).3,
        program: main_program(file, &notes_per_channel, &first_note_tick),
        time_signature: opening_signature(file, first_note_tick.iter().copied().min()),
    };
    let notes_kept = kept.len();
    let roll = PianoRoll::from_notes(steps, kept, meta)?;

    let mut channels: Vec<u8> = (0..16u8)
        .filter(|&c| file.notes.iter().any(|n| n.channel == c))
        .map(|c| c + 1)
        .collect();
    channels.dedup();
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

    let last_tick = file
        .notes
        .iter()
        .map(|n| n.end_tick)
        .max()
        .unwrap_or(0)
        .max(file.end_tick);
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
        time_signatures: file.time_signatures.len(),
        length_steps: roll.steps(),
        length_seconds: time.seconds(last_tick),
        truncated,
    };
    Ok((roll, report))
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

/// The signature in force at `first_note` (the first kept note's tick): the
/// last at or before it, else the file's first (a pickup written before the
/// metre, or no notes), else 4/4. Later changes are not kept: a roll has one
/// metre.
fn opening_signature(file: &MidiNotes, first_note: Option<u64>) -> TimeSignature {
    let signatures = &file.time_signatures;
    first_note
        .and_then(|tick| signatures.iter().rfind(|s| s.0 <= tick))
        .or_else(|| signatures.first())
        .map_or(TimeSignature::COMMON, |s| s.1)
}

/// Ticks per step in exported files: 96 divides evenly for every grid.
const EXPORT_TICKS_PER_STEP: u32 = 96;

/// Writes a roll as an SMF format-1 file: a conductor track (tempo, time
/// signature) and one piano-roll track on channel 1 with the roll's program and
/// one note per onset.
pub fn export(roll: &PianoRoll, options: &ExportOptions) -> Vec<u8> {
    let meta = roll.meta();
    let ppq = u16::from(meta.steps_per_quarter) * EXPORT_TICKS_PER_STEP as u16;
    let tick_of = |step: usize| step as u64 * u64::from(EXPORT_TICKS_PER_STEP);
    let end_tick = tick_of(roll.steps());
    let velocity = u7::new(options.velocity.clamp(1, 127));
    let channel = u4::new(0);
    // The fields are public: write 4/4 rather than an event no reader takes.
    let signature = TimeSignature::new(
        meta.time_signature.numerator,
        meta.time_signature.denominator,
    )
    .unwrap_or_default();

    let conductor = with_deltas(
        vec![
            (0, TrackEventKind::Meta(MetaMessage::TrackName(b"Cadenza"))),
            (
                0,
                TrackEventKind::Meta(MetaMessage::TimeSignature(
                    signature.numerator,
                    signature.denominator_power(),
                    24,
                    8,
                )),
            ),
            (
                0,
                TrackEventKind::Meta(MetaMessage::Tempo(u24::new(
                    meta.tempo.micros_per_quarter(),
                ))),
            ),
        ],
        end_tick,
    );

    let notes = roll.notes();
    let mut timed = Vec::with_capacity(notes.len() * 2 + 2);
    timed.push((
        0,
        TrackEventKind::Meta(MetaMessage::TrackName(b"Piano roll")),
    ));
    timed.push((
        0,
        TrackEventKind::Midi {
            channel,
            message: MidiMessage::ProgramChange {
                program: u7::new(meta.program.min(127)),
            },
        },
    ));
    // Note-offs sort before note-ons at the same tick, so a repeated note ends
    // before it starts again.
    let mut note_events: Vec<(u64, bool, u8)> = Vec::with_capacity(notes.len() * 2);
    for note in &notes {
        note_events.push((tick_of(note.start), true, note.pitch.midi()));
        note_events.push((tick_of(note.end()), false, note.pitch.midi()));
    }
    note_events.sort_unstable();
    timed.extend(note_events.into_iter().map(|(tick, is_on, pitch)| {
        let key = u7::new(pitch);
        let message = if is_on {
            MidiMessage::NoteOn { key, vel: velocity }
        } else {
            MidiMessage::NoteOff {
                key,
                vel: u7::new(64),
            }
        };
        (tick, TrackEventKind::Midi { channel, message })
    }));
    let roll_track = with_deltas(timed, end_tick);

    let smf = midly::Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(ppq))),
        tracks: vec![conductor, roll_track],
    };
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = smf.write(&mut bytes);
    bytes
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
