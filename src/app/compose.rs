//! Composing with the model: filling a selected passage from the music on
//! both sides, harmonising around locked notes, the key, scale, range and
//! density every generation obeys, ghost notes that suggest what comes next
//! and the surprise lens. The edits that go with them (move, resize, copy,
//! paste, transpose, lock) are carried out here too.

use std::ops::Range;

use super::generation::{GenerateRequest, Generated, Passage, range_rows};
use super::{CadenzaApp, Clip, Command, Selection};
use crate::generate::{Constraints, GenerateOptions, fill_context, seed_context};
use crate::music::{Key, estimate_key};
use crate::roll::PITCH_COUNT;

/// Steps of ghost notes at most and at least (one bar where it fits).
const GHOST_STEPS: (usize, usize) = (4, 32);

/// The composing state the app keeps besides the document and the
/// generation: what live changes regenerate, the key heard in the music,
/// the ghost notes and the lens, the copied notes.
#[derive(Debug, Default)]
pub struct Composing {
    /// The fill being auditioned; `None`: the continuation after the seed
    /// window.
    pub(super) focus: Option<Passage>,
    pub(super) estimated_key: Option<Key>,
    /// The document revision the key was estimated from.
    key_revision: Option<u64>,
    pub(super) ghost_notes: bool,
    pub(super) lens: bool,
    /// Where ghost notes go: after the last edit, or where playback stopped.
    pub(super) ghost_at: Option<usize>,
    clip: Option<Clip>,
    /// The playhead in the last frame, to see playback stop.
    last_playhead: Option<f64>,
}

impl Composing {
    /// The key estimated from the music (Krumhansl–Schmuckler).
    pub fn estimated_key(&self) -> Option<Key> {
        self.estimated_key
    }

    /// The fill being auditioned, if any.
    pub fn focus(&self) -> Option<&Passage> {
        self.focus.as_ref()
    }

    pub fn ghost_notes(&self) -> bool {
        self.ghost_notes
    }

    pub fn lens(&self) -> bool {
        self.lens
    }

    /// Whether notes were copied.
    pub fn has_clip(&self) -> bool {
        self.clip.is_some()
    }

    /// Estimates the key again when the document changed since.
    pub(super) fn hear_key(&mut self, document: &super::Document) {
        if self.key_revision != Some(document.revision()) {
            self.key_revision = Some(document.revision());
            self.estimated_key = estimate_key(document.roll().sounding_masks());
        }
    }

    /// A new roll was opened: nothing of the last one carries over.
    pub(super) fn opened(&mut self) {
        self.focus = None;
        self.ghost_at = None;
    }
}

impl CadenzaApp {
    /// What generation must obey over steps `range` (rows `rows.0..rows.1`
    /// regenerated, the others kept as they are): the locked notes, the
    /// range and scale, the density.
    fn constraints_for(&self, range: Range<usize>, rows: (usize, usize)) -> Constraints {
        let compose = &self.generation.params.compose;
        let mut constraints = Constraints {
            allowed: compose.allowed_rows(self.composing.estimated_key),
            density: compose.density,
            ..Constraints::default()
        };
        for (&step, &mask) in self.document.locked().range(range.clone()) {
            constraints.sounding.insert(step, mask);
        }
        let kept_rows =
            !range_rows((rows.0, rows.1.saturating_sub(1))) & range_rows((0, PITCH_COUNT - 1));
        if kept_rows != 0 {
            let roll = self.document.roll();
            for step in range {
                let there = roll.sounding_mask(step);
                *constraints.sounding.entry(step).or_default() |= there & kept_rows;
                *constraints.silent.entry(step).or_default() |= !there & kept_rows;
            }
        }
        constraints
    }

    /// The request for `passage` with `options`, cut from the document.
    fn request_for(
        &self,
        passage: Passage,
        options: GenerateOptions,
    ) -> Result<GenerateRequest, String> {
        let roll = self.document.roll();
        let meter = roll.meta().meter();
        match passage {
            Passage::Continue { seed_start } => {
                let seed = seed_context(roll, seed_start)
                    .map_err(|error| error.to_string())?
                    .to_vec();
                let first = passage.first_step();
                Ok(GenerateRequest {
                    constraints: self
                        .constraints_for(first..first + options.steps, (0, PITCH_COUNT)),
                    passage,
                    seed,
                    after: None,
                    meter,
                    options,
                })
            }
            Passage::Fill { ref range, rows } => {
                if range.is_empty() {
                    return Err("the span to fill is empty".to_owned());
                }
                let (seed, after) = fill_context(roll.sounding_masks(), range);
                let (seed, after) = (seed.to_vec(), after.map(<[u128]>::to_vec));
                let options = GenerateOptions {
                    steps: range.len(),
                    ..options
                };
                Ok(GenerateRequest {
                    constraints: self.constraints_for(range.clone(), rows),
                    passage,
                    seed,
                    after,
                    meter,
                    options,
                })
            }
        }
    }

    /// Asks for `passage` with the controls' options.
    pub(super) fn request_passage(&mut self, passage: Passage) {
        let options = self.generation.params.options();
        let sent = self
            .request_for(passage, options)
            .and_then(|request| self.generation.request(request));
        if let Err(error) = sent {
            self.status = error;
        }
    }

    /// Asks for ghost notes after the last edit, when they are on.
    pub(super) fn suggest_ghosts(&mut self) {
        if !self.composing.ghost_notes {
            return;
        }
        let Some(at) = self.composing.ghost_at else {
            return;
        };
        let roll = self.document.roll();
        let bar = roll.meta().meter().steps_per_bar();
        let steps = bar.clamp(GHOST_STEPS.0, GHOST_STEPS.1);
        let at = at.min(roll.steps());
        let passage = Passage::Fill {
            range: at..at + steps,
            rows: (0, PITCH_COUNT),
        };
        let options = GenerateOptions {
            variations: 1,
            ..self.generation.params.options()
        };
        let request = self.request_for(passage, options).map(|mut request| {
            // The notes already there stay: the suggestion fits around them.
            for step in at..at + steps {
                let there = roll.sounding_mask(step);
                if there != 0 {
                    *request.constraints.sounding.entry(step).or_default() |= there;
                }
            }
            request
        });
        if let Err(error) = request.and_then(|request| self.generation.request_ghost(request)) {
            self.status = error;
        }
    }

    /// Asks the lens to read the roll again, when it is on.
    pub(super) fn hear_again(&mut self) {
        if !self.composing.lens {
            return;
        }
        let roll = self.document.roll();
        if let Err(error) = self
            .generation
            .request_hearing(roll.sounding_masks().to_vec(), roll.meta().meter())
        {
            self.status = error;
        }
    }

    /// Each frame: when playback stops, ghost notes follow from where it
    /// stopped.
    pub(super) fn follow_playback(&mut self) {
        let now = self.transport.playhead();
        if let (Some(stopped_at), None) = (self.composing.last_playhead, now) {
            self.composing.ghost_at = Some(stopped_at.max(0.0).round() as usize);
            self.suggest_ghosts();
        }
        self.composing.last_playhead = now;
    }

    /// Where a paste goes: the step under the mouse, else the selection's
    /// end, else the playhead, else the roll's start; on the snap grid.
    fn paste_at(&self) -> usize {
        let step = self
            .view
            .hovered_step
            .or_else(|| self.document.selection().map(|s| s.steps.1))
            .or_else(|| self.transport.playhead().map(|p| p.max(0.0) as usize))
            .unwrap_or(0);
        self.view.snap.floor(self.document.roll(), step)
    }

    /// Carries out the composing and editing commands; others are handed
    /// back.
    pub(super) fn apply_to_composing(&mut self, command: Command) -> Option<Command> {
        let (changed, what) = match command {
            Command::Fill => {
                self.fill_selection(false);
                return None;
            }
            Command::Harmonise => {
                self.fill_selection(true);
                return None;
            }
            Command::DiscardFill => {
                self.composing.focus = None;
                self.generation.clear_result();
                self.rebuild_shown();
                self.status = "dropped the fill".to_owned();
                self.request_generation();
                return None;
            }
            Command::AcceptGhost => {
                self.accept_ghost();
                return None;
            }
            Command::LockAt { row, step, lock } => {
                let note = self.document.note_at(row, step)?;
                (
                    self.document.lock_notes(&[note], lock),
                    if lock { "locked" } else { "unlocked" },
                )
            }
            Command::ToggleLockSelection => {
                let Some(selection) = self.document.selection() else {
                    self.status = "select notes to lock first".to_owned();
                    return None;
                };
                let notes = self.document.notes_in(selection);
                let all_locked = notes
                    .iter()
                    .all(|n| self.document.is_locked(n.start, n.pitch.row()));
                let lock = !all_locked;
                (
                    self.document.lock_notes(&notes, lock),
                    if lock { "locked" } else { "unlocked" },
                )
            }
            other => return self.apply_edit(other),
        };
        if changed {
            self.document_changed(what);
        }
        None
    }

    /// Moving, resizing, copying and pasting notes; other commands are
    /// handed back.
    fn apply_edit(&mut self, command: Command) -> Option<Command> {
        let (changed, what) = match command {
            Command::MoveNotes { notes, steps, rows } => {
                let (moved_steps, moved_rows) = self.document.move_notes(&notes, steps, rows);
                if (moved_steps, moved_rows) != (0, 0) {
                    self.composing.ghost_at = notes
                        .iter()
                        .map(|n| n.end().saturating_add_signed(moved_steps))
                        .max();
                }
                ((moved_steps, moved_rows) != (0, 0), "moved")
            }
            Command::ResizeNote { row, start, len } => {
                self.composing.ghost_at = Some(start + len);
                (self.document.resize_note(row, start, len), "resized")
            }
            Command::NudgeSelection { steps, rows } => {
                let selection = self.document.selection()?;
                let unit = self.view.snap.unit(self.document.roll(), selection.steps.0) as isize;
                let notes = self.document.notes_in(selection);
                let moved = self.document.move_notes(&notes, steps * unit, rows);
                (
                    moved != (0, 0),
                    if rows != 0 { "transposed" } else { "moved" },
                )
            }
            Command::Copy { cut } => {
                let Some(clip) = self.document.copy_selection() else {
                    self.status = "select notes to copy first".to_owned();
                    return None;
                };
                self.status = format!("copied {} notes", clip.notes.len());
                self.composing.clip = Some(clip);
                if !cut {
                    return None;
                }
                (self.document.delete_selection(), "cut")
            }
            Command::Paste => {
                let Some(clip) = self.composing.clip.clone() else {
                    self.status = "nothing copied to paste".to_owned();
                    return None;
                };
                let at = self.paste_at();
                self.composing.ghost_at = Some(at + clip.steps);
                (self.paste(&clip, at), "pasted")
            }
            Command::Duplicate => {
                let (Some(selection), Some(clip)) =
                    (self.document.selection(), self.document.copy_selection())
                else {
                    self.status = "select notes to duplicate first".to_owned();
                    return None;
                };
                (self.paste(&clip, selection.steps.1), "duplicated")
            }
            Command::SelectAll => {
                let steps = self.document.roll().steps();
                self.apply(Command::Select(Some(Selection {
                    rows: (0, PITCH_COUNT),
                    steps: (0, steps),
                })));
                return None;
            }
            other => return Some(other),
        };
        if changed {
            self.document_changed(what);
        }
        None
    }

    fn paste(&mut self, clip: &Clip, at: usize) -> bool {
        match self.document.paste(clip, at) {
            Ok(pasted) => pasted,
            Err(error) => {
                self.status = format!("cannot paste: {error}");
                false
            }
        }
    }

    /// Fills the selected span from both sides; harmonising locks the
    /// selection's notes first and regenerates every pitch around them.
    fn fill_selection(&mut self, harmonise: bool) {
        let Some(selection) = self.document.selection() else {
            self.status =
                "select a span to fill first: drag on the ruler, or Shift+drag over notes"
                    .to_owned();
            return;
        };
        let rows = if harmonise {
            let melody = self.document.notes_in(selection);
            if melody.is_empty() {
                self.status = "select the notes to harmonise first".to_owned();
                return;
            }
            if self.document.lock_notes(&melody, true) {
                self.rebuild_shown();
            }
            (0, PITCH_COUNT)
        } else {
            selection.rows
        };
        let range = selection.steps.0..selection.steps.1.min(self.document.roll().steps());
        if range.is_empty() {
            self.status = "the selection lies past the roll's end".to_owned();
            return;
        }
        self.status = format!("filling steps {}..{}...", range.start, range.end);
        let passage = Passage::Fill { range, rows };
        self.composing.focus = Some(passage.clone());
        self.request_passage(passage);
    }

    /// Writes the ghost notes into the roll; the next ones follow on.
    fn accept_ghost(&mut self) {
        let Some(ghost) = self.generation.take_ghost() else {
            self.status = "no ghost notes to accept".to_owned();
            return;
        };
        let end = ghost.first_step + ghost.cells.len();
        if self.document.add_cells(ghost.first_step, &ghost.cells) {
            self.composing.ghost_at = Some(end);
            self.document_changed("accepted the ghost notes");
        } else {
            self.status = "the ghost notes add nothing".to_owned();
            self.composing.ghost_at = Some(end);
            self.suggest_ghosts();
        }
    }

    /// Writes the fill being auditioned into the roll (its rows only).
    pub(super) fn keep_fill(&mut self) -> bool {
        if !self.generation.result().is_some_and(Generated::is_fill) {
            return false;
        }
        let Some(generated) = self.generation.take_result() else {
            return false;
        };
        let Passage::Fill { range, rows } = &generated.passage else {
            return false;
        };
        let (range, rows, steps) = (range.clone(), *rows, &generated.shown().steps);
        self.composing.focus = None;
        let mask = range_rows((rows.0, rows.1.saturating_sub(1)));
        match self.document.write_rows(range.start, steps, mask) {
            Ok(()) => self.document_changed("kept the fill"),
            Err(error) => self.status = format!("cannot keep it: {error}"),
        }
        true
    }
}
