//! The roll being composed: its notes, its name, the seed window, the
//! selection and the undo history, which keeps whole rolls within a memory
//! budget ([`UNDO_BYTES`](crate::limits::UNDO_BYTES)).

use std::collections::{BTreeMap, VecDeque};

use super::roll_view::Selection;
use crate::limits;
use crate::model::WINDOW_STEPS;
use crate::roll::{PITCH_COUNT, PianoRoll, Pitch, RollNote};

/// Cells the user locked, by step: they survive every fill and
/// continuation. Always a subset of the roll's sounding cells.
pub type Locks = BTreeMap<usize, u128>;

/// One version of the document's content: the roll and its locked cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Version {
    pub roll: PianoRoll,
    pub locked: Locks,
}

/// Earlier and later versions of the roll, oldest first, dropping the
/// oldest when they would take more than the budget. Each is kept with the
/// bytes counted for it.
#[derive(Debug, Default)]
pub struct UndoHistory {
    undo: VecDeque<(Version, usize)>,
    redo: Vec<(Version, usize)>,
    /// Bytes the versions hold.
    bytes: usize,
    budget: usize,
}

/// Bytes `version` holds beside its neighbour in the history: its masks and
/// locks, and its arrangement (played notes) where it is not the one
/// `neighbour` shares (an edit of velocities or a move made a copy).
fn version_bytes(version: &Version, neighbour: &Version) -> usize {
    let mask = std::mem::size_of::<u128>();
    let cells = version.roll.steps() * 2 * mask
        + version.locked.len() * (mask + std::mem::size_of::<usize>());
    let arrangement = version.roll.arrangement();
    if std::ptr::eq(arrangement, neighbour.roll.arrangement()) {
        cells
    } else {
        cells + std::mem::size_of_val(arrangement.notes())
    }
}

impl UndoHistory {
    /// An empty history that keeps at most `budget` bytes of rolls.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// Remembers `before` as the version an edit replaced with `current`;
    /// redo is gone.
    pub fn record(&mut self, before: Version, current: &Version) {
        let bytes = version_bytes(&before, current);
        self.bytes += bytes;
        self.undo.push_back((before, bytes));
        for (_, dropped) in self.redo.drain(..) {
            self.bytes -= dropped;
        }
        while self.bytes > self.budget {
            let Some((_, oldest)) = self.undo.pop_front() else {
                break;
            };
            self.bytes -= oldest;
        }
    }

    /// The version before `current`, taking `current` for redo.
    pub fn undo(&mut self, current: Version) -> Result<Version, Version> {
        let Some((previous, counted)) = self.undo.pop_back() else {
            return Err(current);
        };
        let bytes = version_bytes(&current, &previous);
        self.bytes = self.bytes + bytes - counted;
        self.redo.push((current, bytes));
        Ok(previous)
    }

    /// The version undone last, taking `current` for undo.
    pub fn redo(&mut self, current: Version) -> Result<Version, Version> {
        let Some((next, counted)) = self.redo.pop() else {
            return Err(current);
        };
        let bytes = version_bytes(&current, &next);
        self.bytes = self.bytes + bytes - counted;
        self.undo.push_back((current, bytes));
        Ok(next)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Versions kept for undo.
    pub fn undo_depth(&self) -> usize {
        self.undo.len()
    }

    /// Bytes the kept versions take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Notes copied from a selection, with their lock, timed from the
/// selection's first step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clip {
    pub notes: Vec<(RollNote, bool)>,
    /// Steps the selection spanned: a duplicate goes this far on.
    pub steps: usize,
    /// The selection's pitch rows.
    pub rows: (usize, usize),
    /// The step the notes were copied from: their played part, velocity
    /// and timing are copied along where the roll still has them.
    pub from: usize,
}

/// The roll being composed and what belongs to it.
#[derive(Debug)]
pub struct Document {
    content: Version,
    name: String,
    seed_start: usize,
    selection: Option<Selection>,
    history: UndoHistory,
    /// Edits not yet autosaved.
    dirty: bool,
    /// Edits since the file was opened or saved (the window title says so).
    modified: bool,
    /// Grows with every change of the content, so what is derived from it
    /// is computed again only when it changed.
    revision: u64,
}

impl Document {
    pub fn new(roll: PianoRoll, name: String) -> Self {
        Self {
            content: Version {
                roll,
                locked: Locks::new(),
            },
            name,
            seed_start: 0,
            selection: None,
            history: UndoHistory::with_budget(limits::UNDO_BYTES),
            dirty: false,
            modified: false,
            revision: 0,
        }
    }

    pub fn roll(&self) -> &PianoRoll {
        &self.content.roll
    }

    /// The locked cells, by step.
    pub fn locked(&self) -> &Locks {
        &self.content.locked
    }

    /// Whether the cell at `step`, `row` is locked.
    pub fn is_locked(&self, step: usize, row: usize) -> bool {
        self.content
            .locked
            .get(&step)
            .is_some_and(|mask| mask >> row & 1 == 1)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn seed_start(&self) -> usize {
        self.seed_start
    }

    pub fn selection(&self) -> Option<Selection> {
        self.selection
    }

    pub fn history(&self) -> &UndoHistory {
        &self.history
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }

    /// Changes with every change of the roll or its locks.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether there are edits the file does not have.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// The roll was written to a file (or read from one) under `name`.
    pub fn mark_written(&mut self, name: String) {
        self.name = name;
        self.modified = false;
    }

    /// The last step a seed window may start at.
    fn latest_seed_start(&self) -> usize {
        self.content.roll.steps().saturating_sub(WINDOW_STEPS)
    }

    /// Moves the seed window to `start`, or as near as the roll allows.
    pub fn set_seed_start(&mut self, start: usize) {
        self.seed_start = start.min(self.latest_seed_start());
    }

    pub fn select(&mut self, selection: Option<Selection>) {
        self.selection = selection;
    }

    /// Applies `change` as one undoable edit; `change` says whether it
    /// changed anything. Returns that. Locks on cells that no longer sound
    /// are dropped.
    pub fn edit(&mut self, change: impl FnOnce(&mut PianoRoll) -> bool) -> bool {
        self.edit_version(|version| change(&mut version.roll))
    }

    /// [`edit`](Self::edit) of the roll and its locks together.
    fn edit_version(&mut self, change: impl FnOnce(&mut Version) -> bool) -> bool {
        let before = self.content.clone();
        if !change(&mut self.content) {
            return false;
        }
        prune_locks(&mut self.content);
        if self.content == before {
            return false;
        }
        self.history.record(before, &self.content);
        self.changed();
        true
    }

    /// Replaces the whole roll (a file opened, an autosave restored), undoably.
    pub fn replace(&mut self, roll: PianoRoll, name: String) {
        let before = std::mem::replace(
            &mut self.content,
            Version {
                roll,
                locked: Locks::new(),
            },
        );
        self.history.record(before, &self.content);
        self.name = name;
        self.selection = None;
        self.changed();
    }

    /// Takes back locks an autosave kept (those on cells that no longer
    /// sound are dropped); part of the edit that restored the roll.
    pub fn restore_locks(&mut self, locks: impl IntoIterator<Item = (usize, u128)>) {
        self.content.locked = locks.into_iter().filter(|&(_, mask)| mask != 0).collect();
        prune_locks(&mut self.content);
        self.revision += 1;
    }

    pub fn undo(&mut self) -> bool {
        self.step_history(UndoHistory::undo)
    }

    pub fn redo(&mut self) -> bool {
        self.step_history(UndoHistory::redo)
    }

    fn step_history(
        &mut self,
        step: fn(&mut UndoHistory, Version) -> Result<Version, Version>,
    ) -> bool {
        let current = std::mem::take(&mut self.content);
        let (content, moved) = match step(&mut self.history, current) {
            Ok(content) => (content, true),
            Err(current) => (current, false),
        };
        self.content = content;
        if moved {
            self.changed();
        }
        moved
    }

    /// After any change: the seed window and the selection stay inside the
    /// roll.
    fn changed(&mut self) {
        self.dirty = true;
        self.modified = true;
        self.revision += 1;
        self.seed_start = self.seed_start.min(self.latest_seed_start());
        let steps = self.content.roll.steps();
        if let Some(selection) = &mut self.selection {
            selection.steps.1 = selection.steps.1.min(steps);
            if selection.steps.0 >= selection.steps.1 {
                self.selection = None;
            }
        }
    }

    /// Draws a note on pitch row `row` over steps `start..end`.
    pub fn draw_note(&mut self, row: usize, start: usize, end: usize) -> bool {
        let Some(pitch) = Pitch::from_row(row) else {
            return false;
        };
        if end <= start {
            return false;
        }
        self.edit(|roll| {
            let before = roll.note_count();
            roll.add_note(RollNote {
                start,
                pitch,
                len: end - start,
            });
            roll.note_count() != before
        })
    }

    /// Erases the note sounding at this cell.
    pub fn erase_at(&mut self, row: usize, step: usize) -> bool {
        let Some(pitch) = Pitch::from_row(row) else {
            return false;
        };
        self.edit(|roll| roll.remove_note_at(step, pitch))
    }

    /// The note sounding at this cell, if any.
    pub fn note_at(&self, row: usize, step: usize) -> Option<RollNote> {
        note_at(&self.content.roll, row, step)
    }

    /// The notes that start inside `selection`.
    pub fn notes_in(&self, selection: Selection) -> Vec<RollNote> {
        notes_in(&self.content.roll, selection)
    }

    /// Deletes the notes that start inside the selection, and the selection.
    pub fn delete_selection(&mut self) -> bool {
        let Some(selection) = self.selection.take() else {
            return false;
        };
        self.edit(|roll| {
            let doomed = notes_in(roll, selection);
            for note in &doomed {
                roll.remove_note_at(note.start, note.pitch);
            }
            !doomed.is_empty()
        })
    }

    /// Locks (or unlocks) `notes`' cells.
    pub fn lock_notes(&mut self, notes: &[RollNote], lock: bool) -> bool {
        self.edit_version(|version| {
            for note in notes {
                set_lock(&mut version.locked, note, lock);
            }
            true
        })
    }

    /// Locks the note at this cell, or unlocks it when it is locked.
    pub fn toggle_lock_at(&mut self, row: usize, step: usize) -> bool {
        let Some(note) = self.note_at(row, step) else {
            return false;
        };
        let lock = !self.is_locked(note.start, row);
        self.lock_notes(&[note], lock)
    }

    /// Moves `notes` by `steps` and `rows` (their locks with them), as far
    /// as the roll allows in each direction; returns how far they went.
    pub fn move_notes(&mut self, notes: &[RollNote], steps: isize, rows: isize) -> (isize, isize) {
        let (steps, rows) = fit_move(notes, steps, rows, self.content.roll.steps());
        if notes.is_empty() || (steps, rows) == (0, 0) {
            return (0, 0);
        }
        let moved = self.edit_version(|version| {
            let locks: Vec<bool> = notes
                .iter()
                .map(|n| is_locked_in(&version.locked, n.start, n.pitch.row()))
                .collect();
            for note in notes {
                version.roll.remove_note_at(note.start, note.pitch);
                set_lock(&mut version.locked, note, false);
            }
            let mut moves = Vec::with_capacity(notes.len());
            for (note, locked) in notes.iter().zip(locks) {
                if let Some(moved) = shifted(note, steps, rows) {
                    version.roll.add_note(moved);
                    if locked {
                        set_lock(&mut version.locked, &moved, true);
                    }
                    moves.push((*note, moved));
                }
            }
            // Part, velocity and timing go with the notes.
            version.roll.carry_played(&moves, false);
            true
        });
        if !moved {
            return (0, 0);
        }
        if let Some(selection) = &mut self.selection {
            selection.steps = (
                selection.steps.0.saturating_add_signed(steps),
                selection.steps.1.saturating_add_signed(steps),
            );
            selection.rows = (
                selection.rows.0.saturating_add_signed(rows),
                selection
                    .rows
                    .1
                    .saturating_add_signed(rows)
                    .min(PITCH_COUNT),
            );
        }
        (steps, rows)
    }

    /// Gives the note at `row`, `start` the length `len` (at least one step,
    /// cut at the roll's end); its lock stays.
    pub fn resize_note(&mut self, row: usize, start: usize, len: usize) -> bool {
        let Some(note) = self.note_at(row, start) else {
            return false;
        };
        let len = len.max(1).min(self.content.roll.steps() - note.start);
        if len == note.len {
            return false;
        }
        self.edit_version(|version| {
            let locked = is_locked_in(&version.locked, note.start, row);
            version.roll.remove_note_at(note.start, note.pitch);
            set_lock(&mut version.locked, &note, false);
            let resized = RollNote { len, ..note };
            version.roll.add_note(resized);
            version.roll.carry_played(&[(note, resized)], false);
            if locked {
                set_lock(&mut version.locked, &resized, true);
            }
            true
        })
    }

    /// The selection's notes and locks, to paste elsewhere.
    pub fn copy_selection(&self) -> Option<Clip> {
        let selection = self.selection?;
        let notes = self
            .notes_in(selection)
            .into_iter()
            .map(|note| {
                let locked = self.is_locked(note.start, note.pitch.row());
                (
                    RollNote {
                        start: note.start - selection.steps.0,
                        ..note
                    },
                    locked,
                )
            })
            .collect();
        Some(Clip {
            notes,
            steps: selection.steps.1 - selection.steps.0,
            rows: selection.rows,
            from: selection.steps.0,
        })
    }

    /// Writes `clip` from step `at` on (the roll grows to hold it, up to its
    /// limit) and selects what was pasted.
    pub fn paste(&mut self, clip: &Clip, at: usize) -> Result<bool, crate::roll::RollError> {
        let end = at.saturating_add(clip.steps.max(1));
        let mut grown = self.content.roll.clone();
        if end > grown.steps() {
            let mut sounding = grown.sounding_masks().to_vec();
            let mut onsets = grown.onset_masks().to_vec();
            sounding.resize(end, 0);
            onsets.resize(end, 0);
            grown = grown.with_cells(sounding, onsets)?;
        }
        let pasted = self.edit_version(|version| {
            version.roll = grown;
            let mut copies = Vec::with_capacity(clip.notes.len());
            for (note, locked) in &clip.notes {
                let placed = RollNote {
                    start: at + note.start,
                    ..*note
                };
                version.roll.add_note(placed);
                if *locked {
                    set_lock(&mut version.locked, &placed, true);
                }
                let source = RollNote {
                    start: clip.from + note.start,
                    ..*note
                };
                copies.push((source, placed));
            }
            version.roll.carry_played(&copies, true);
            true
        });
        if pasted {
            self.selection = Some(Selection {
                rows: clip.rows,
                steps: (at, end.min(self.content.roll.steps())),
            });
        }
        Ok(pasted)
    }

    /// Writes `steps` over the roll from step `start` on (lengthening it if
    /// they reach past the end) and moves the seed window to their last 9
    /// steps, ready to continue. Fails when the roll would grow too long.
    pub fn keep(&mut self, start: usize, steps: &[u128]) -> Result<(), crate::roll::RollError> {
        let end = start + steps.len();
        self.write_rows(start, steps, u128::MAX)?;
        self.seed_start = end.saturating_sub(WINDOW_STEPS);
        Ok(())
    }

    /// Writes rows `rows` of `steps` over steps `start..` of the roll
    /// (lengthening it if they reach past the end), the other rows as they
    /// were, as one undoable edit; a note the passage cuts at either end
    /// starts anew where it sounds again.
    pub fn write_rows(
        &mut self,
        start: usize,
        steps: &[u128],
        rows: u128,
    ) -> Result<(), crate::roll::RollError> {
        let end = start + steps.len();
        let roll = &self.content.roll;
        let total = roll.steps().max(end);
        let mut sounding = roll.sounding_masks().to_vec();
        let mut onsets = roll.onset_masks().to_vec();
        sounding.resize(total, 0);
        onsets.resize(total, 0);
        for (k, &new) in steps.iter().enumerate() {
            let step = start + k;
            sounding[step] = (sounding[step] & !rows) | (new & rows);
            onsets[step] &= !rows;
        }
        let written = roll.with_cells(sounding, onsets)?;
        self.edit_version(|version| {
            version.roll = written;
            true
        });
        Ok(())
    }

    /// Adds `cells` (by step, from `start`) to the roll as notes, keeping
    /// every note there: accepted suggestions.
    pub fn add_cells(&mut self, start: usize, cells: &[u128]) -> bool {
        let roll = &self.content.roll;
        let end = start + cells.len();
        let mut sounding = roll.sounding_masks().to_vec();
        let mut onsets = roll.onset_masks().to_vec();
        if end > sounding.len() {
            sounding.resize(end, 0);
            onsets.resize(end, 0);
        }
        for (mask, &added) in sounding[start..end].iter_mut().zip(cells) {
            *mask |= added;
        }
        let Ok(written) = roll.with_cells(sounding, onsets) else {
            return false;
        };
        self.edit_version(|version| {
            version.roll = written;
            true
        })
    }
}

/// Drops locks on cells that do not sound.
fn prune_locks(version: &mut Version) {
    let roll = &version.roll;
    version.locked.retain(|&step, mask| {
        *mask &= roll.sounding_mask(step);
        *mask != 0
    });
}

fn is_locked_in(locked: &Locks, step: usize, row: usize) -> bool {
    locked.get(&step).is_some_and(|mask| mask >> row & 1 == 1)
}

/// Locks or unlocks every cell of `note`.
fn set_lock(locked: &mut Locks, note: &RollNote, lock: bool) {
    let bit = 1u128 << note.pitch.row();
    for step in note.start..note.end() {
        if lock {
            *locked.entry(step).or_default() |= bit;
        } else if let Some(mask) = locked.get_mut(&step) {
            *mask &= !bit;
            if *mask == 0 {
                locked.remove(&step);
            }
        }
    }
}

/// The note of `roll` sounding at this cell, if any.
pub(super) fn note_at(roll: &PianoRoll, row: usize, step: usize) -> Option<RollNote> {
    let pitch = Pitch::from_row(row)?;
    if !roll.is_sounding(step, pitch) {
        return None;
    }
    let mut start = step;
    while !roll.is_onset(start, pitch) && start > 0 && roll.is_sounding(start - 1, pitch) {
        start -= 1;
    }
    let mut end = step + 1;
    while roll.is_sounding(end, pitch) && !roll.is_onset(end, pitch) {
        end += 1;
    }
    Some(RollNote {
        start,
        pitch,
        len: end - start,
    })
}

/// The notes of `roll` that start inside `selection`.
pub(super) fn notes_in(roll: &PianoRoll, selection: Selection) -> Vec<RollNote> {
    let steps = selection.steps.0..selection.steps.1.min(roll.steps());
    let mut notes = Vec::new();
    for start in steps {
        let onsets = roll.onset_mask(start);
        for row in crate::roll::mask_bits(onsets) {
            if (selection.rows.0..selection.rows.1).contains(&row)
                && let Some(note) = note_at(roll, row, start)
            {
                notes.push(note);
            }
        }
    }
    notes
}

/// `steps` and `rows` cut so that every one of `notes` stays inside a roll
/// of `length` steps and its pitch rows.
fn fit_move(notes: &[RollNote], steps: isize, rows: isize, length: usize) -> (isize, isize) {
    let (Some(first), Some(last_end)) = (
        notes.iter().map(|n| n.start).min(),
        notes.iter().map(RollNote::end).max(),
    ) else {
        return (0, 0);
    };
    let low = notes.iter().map(|n| n.pitch.row()).min().unwrap_or(0);
    let high = notes.iter().map(|n| n.pitch.row()).max().unwrap_or(0);
    let steps = steps.clamp(
        -(first as isize),
        length as isize - last_end.min(length) as isize,
    );
    let rows = rows.clamp(-(low as isize), (PITCH_COUNT - 1 - high) as isize);
    (steps, rows)
}

/// `note` moved by `steps` and `rows`, if it stays on the roll's rows.
fn shifted(note: &RollNote, steps: isize, rows: isize) -> Option<RollNote> {
    let pitch = Pitch::from_row(note.pitch.row().checked_add_signed(rows)?)?;
    Some(RollNote {
        start: note.start.checked_add_signed(steps)?,
        pitch,
        len: note.len,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::{Document, UndoHistory, Version, version_bytes};
    use crate::app::Selection;
    use crate::roll::{PianoRoll, Pitch, RollMeta, RollNote};

    fn roll(steps: usize) -> Version {
        Version {
            roll: PianoRoll::new(steps, RollMeta::default()).unwrap(),
            locked: super::Locks::new(),
        }
    }

    #[test]
    fn the_history_keeps_to_its_budget_and_undo_redo_swap_versions() {
        let current = roll(100);
        let each = version_bytes(&roll(100), &current);
        let mut history = UndoHistory::with_budget(3 * each);
        for _ in 0..10 {
            history.record(roll(100), &current);
        }
        assert_eq!(history.undo_depth(), 3);
        assert_eq!(history.bytes(), 3 * each);
        let back = history.undo(roll(200)).unwrap();
        assert_eq!(back.roll.steps(), 100);
        assert!(history.can_redo());
        assert_eq!(history.redo(back).unwrap().roll.steps(), 200);
        // One roll larger than the budget is not kept at all.
        history.record(roll(1_000), &current);
        assert!(history.bytes() <= 3 * each);
    }

    #[test]
    fn an_arrangement_an_edit_copied_counts_against_the_budget() {
        let mut played = roll(16);
        let part = crate::arrangement::Part {
            name: "piano".into(),
            channel: 0,
        };
        let note = crate::arrangement::PlayedNote::on_grid(0, 1, 60, 0, 90, 0);
        played
            .roll
            .arrangement_mut()
            .add_played(vec![part], vec![note]);
        let cells_only = version_bytes(&played, &played.clone());
        // An edit of the arrangement (velocities, a move) copies it.
        let mut edited = played.clone();
        edited.roll.arrangement_mut().set_target_part(Some(0));
        assert_eq!(
            version_bytes(&played, &edited),
            cells_only + std::mem::size_of::<crate::arrangement::PlayedNote>()
        );
    }

    fn note(start: usize, midi: u8, len: usize) -> RollNote {
        RollNote {
            start,
            pitch: Pitch::from_midi(midi).unwrap(),
            len,
        }
    }

    #[test]
    fn locks_move_with_their_notes_and_undo_brings_both_back() {
        let mut document = Document::new(roll(32).roll, "t".to_owned());
        assert!(document.draw_note(note(4, 60, 1).pitch.row(), 4, 8));
        assert!(document.draw_note(note(4, 64, 1).pitch.row(), 4, 6));
        let c = note(4, 60, 4);
        assert!(document.lock_notes(&[c], true));
        assert!(document.is_locked(7, c.pitch.row()));
        // Up a fifth and two steps on: the lock goes along.
        let all = document.notes_in(Selection {
            rows: (0, 106),
            steps: (0, 32),
        });
        assert_eq!(document.move_notes(&all, 2, 7), (2, 7));
        let g = Pitch::from_midi(67).unwrap().row();
        assert!(document.is_locked(6, g) && document.is_locked(9, g));
        assert!(!document.is_locked(4, c.pitch.row()));
        assert_eq!(
            document
                .locked()
                .values()
                .map(|m| m.count_ones())
                .sum::<u32>(),
            4
        );
        // A move past the roll's start stops at it.
        assert_eq!(
            document.move_notes(
                &document.notes_in(Selection {
                    rows: (0, 106),
                    steps: (0, 32)
                }),
                -100,
                0
            ),
            (-6, 0)
        );
        assert!(document.undo() && document.undo());
        assert!(document.is_locked(4, c.pitch.row()));
        // Erasing a locked note drops its lock.
        assert!(document.erase_at(c.pitch.row(), 5));
        assert!(document.locked().is_empty());
    }

    #[test]
    fn resizing_copying_and_pasting_keep_notes_whole() {
        let mut document = Document::new(roll(16).roll, "t".to_owned());
        let row = note(0, 60, 1).pitch.row();
        assert!(document.draw_note(row, 2, 4));
        assert!(document.resize_note(row, 3, 6));
        assert_eq!(document.note_at(row, 7), Some(note(2, 60, 6)));
        document.select(Some(Selection {
            rows: (row, row + 1),
            steps: (0, 8),
        }));
        let clip = document.copy_selection().unwrap();
        assert!(document.paste(&clip, 12).unwrap());
        // The roll grew to hold the paste, which is selected.
        assert_eq!(document.roll().steps(), 20);
        assert_eq!(document.note_at(row, 15), Some(note(14, 60, 6)));
        assert_eq!(document.selection().unwrap().steps, (12, 20));
    }
}
