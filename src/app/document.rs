//! The roll being composed: its notes, its name, the seed window, the
//! selection and the undo history, which keeps whole rolls within a memory
//! budget ([`UNDO_BYTES`](crate::limits::UNDO_BYTES)).

use std::collections::VecDeque;

use super::roll_view::Selection;
use crate::limits;
use crate::model::WINDOW_STEPS;
use crate::roll::{PianoRoll, Pitch, RollNote};

/// Earlier and later versions of the roll, oldest first, dropping the
/// oldest when they would take more than the budget.
#[derive(Debug, Default)]
pub struct UndoHistory {
    undo: VecDeque<PianoRoll>,
    redo: Vec<PianoRoll>,
    /// Bytes the versions hold.
    bytes: usize,
    budget: usize,
}

/// Bytes a roll's masks take.
fn roll_bytes(roll: &PianoRoll) -> usize {
    // The arrangement is shared between versions until one changes it, so
    // it is not counted per version.
    roll.steps() * 2 * std::mem::size_of::<u128>()
}

impl UndoHistory {
    /// An empty history that keeps at most `budget` bytes of rolls.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            budget,
            ..Self::default()
        }
    }

    /// Remembers `before` as the version an edit replaced; redo is gone.
    pub fn record(&mut self, before: PianoRoll) {
        self.bytes += roll_bytes(&before);
        self.undo.push_back(before);
        for dropped in self.redo.drain(..) {
            self.bytes -= roll_bytes(&dropped);
        }
        while self.bytes > self.budget {
            let Some(oldest) = self.undo.pop_front() else {
                break;
            };
            self.bytes -= roll_bytes(&oldest);
        }
    }

    /// The version before `current`, taking `current` for redo.
    pub fn undo(&mut self, current: PianoRoll) -> Result<PianoRoll, PianoRoll> {
        let Some(previous) = self.undo.pop_back() else {
            return Err(current);
        };
        self.bytes = self.bytes + roll_bytes(&current) - roll_bytes(&previous);
        self.redo.push(current);
        Ok(previous)
    }

    /// The version undone last, taking `current` for undo.
    pub fn redo(&mut self, current: PianoRoll) -> Result<PianoRoll, PianoRoll> {
        let Some(next) = self.redo.pop() else {
            return Err(current);
        };
        self.bytes = self.bytes + roll_bytes(&current) - roll_bytes(&next);
        self.undo.push_back(current);
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

/// The roll being composed and what belongs to it.
#[derive(Debug)]
pub struct Document {
    roll: PianoRoll,
    name: String,
    seed_start: usize,
    selection: Option<Selection>,
    history: UndoHistory,
    /// Edits not yet autosaved.
    dirty: bool,
}

impl Document {
    pub fn new(roll: PianoRoll, name: String) -> Self {
        Self {
            roll,
            name,
            seed_start: 0,
            selection: None,
            history: UndoHistory::with_budget(limits::UNDO_BYTES),
            dirty: false,
        }
    }

    pub fn roll(&self) -> &PianoRoll {
        &self.roll
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

    /// The last step a seed window may start at.
    fn latest_seed_start(&self) -> usize {
        self.roll.steps().saturating_sub(WINDOW_STEPS)
    }

    /// Moves the seed window to `start`, or as near as the roll allows.
    pub fn set_seed_start(&mut self, start: usize) {
        self.seed_start = start.min(self.latest_seed_start());
    }

    pub fn select(&mut self, selection: Option<Selection>) {
        self.selection = selection;
    }

    /// Applies `change` as one undoable edit; `change` says whether it
    /// changed anything. Returns that.
    pub fn edit(&mut self, change: impl FnOnce(&mut PianoRoll) -> bool) -> bool {
        let before = self.roll.clone();
        if !change(&mut self.roll) {
            return false;
        }
        self.history.record(before);
        self.changed();
        true
    }

    /// Replaces the whole roll (a file opened, an autosave restored), undoably.
    pub fn replace(&mut self, roll: PianoRoll, name: String) {
        let before = std::mem::replace(&mut self.roll, roll);
        self.history.record(before);
        self.name = name;
        self.selection = None;
        self.changed();
    }

    pub fn undo(&mut self) -> bool {
        self.step_history(UndoHistory::undo)
    }

    pub fn redo(&mut self) -> bool {
        self.step_history(UndoHistory::redo)
    }

    fn step_history(
        &mut self,
        step: fn(&mut UndoHistory, PianoRoll) -> Result<PianoRoll, PianoRoll>,
    ) -> bool {
        let current = std::mem::take(&mut self.roll);
        let (roll, moved) = match step(&mut self.history, current) {
            Ok(roll) => (roll, true),
            Err(current) => (current, false),
        };
        self.roll = roll;
        if moved {
            self.changed();
        }
        moved
    }

    /// After any change: the seed window stays inside the roll.
    fn changed(&mut self) {
        self.dirty = true;
        self.seed_start = self.seed_start.min(self.latest_seed_start());
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

    /// Deletes the notes that start inside the selection, and the selection.
    pub fn delete_selection(&mut self) -> bool {
        let Some(selection) = self.selection.take() else {
            return false;
        };
        self.edit(|roll| {
            let doomed: Vec<RollNote> = roll
                .notes()
                .into_iter()
                .filter(|n| {
                    (selection.rows.0..selection.rows.1).contains(&n.pitch.row())
                        && (selection.steps.0..selection.steps.1).contains(&n.start)
                })
                .collect();
            for note in &doomed {
                roll.remove_note_at(note.start, note.pitch);
            }
            !doomed.is_empty()
        })
    }

    /// Writes `steps` over the roll from step `start` on (lengthening it if
    /// they reach past the end) and moves the seed window to their last 9
    /// steps, ready to continue. Fails when the roll would grow too long.
    pub fn keep(&mut self, start: usize, steps: &[u128]) -> Result<(), crate::roll::RollError> {
        let end = start + steps.len();
        let total = self.roll.steps().max(end);
        let mut sounding = self.roll.sounding_masks().to_vec();
        let mut onsets = self.roll.onset_masks().to_vec();
        sounding.resize(total, 0);
        onsets.resize(total, 0);
        sounding[start..end].copy_from_slice(steps);
        onsets[start..end].fill(0);
        let kept = self.roll.with_cells(sounding, onsets)?;
        let before = std::mem::replace(&mut self.roll, kept);
        self.history.record(before);
        self.changed();
        self.seed_start = end.saturating_sub(WINDOW_STEPS);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::{UndoHistory, roll_bytes};
    use crate::roll::{PianoRoll, RollMeta};

    fn roll(steps: usize) -> PianoRoll {
        PianoRoll::new(steps, RollMeta::default()).unwrap()
    }

    #[test]
    fn the_history_keeps_to_its_budget_and_undo_redo_swap_versions() {
        let each = roll_bytes(&roll(100));
        let mut history = UndoHistory::with_budget(3 * each);
        for _ in 0..10 {
            history.record(roll(100));
        }
        assert_eq!(history.undo_depth(), 3);
        assert_eq!(history.bytes(), 3 * each);
        let back = history.undo(roll(200)).unwrap();
        assert_eq!(back.steps(), 100);
        assert!(history.can_redo());
        assert_eq!(history.redo(back).unwrap().steps(), 200);
        // One roll larger than the budget is not kept at all.
        history.record(roll(1_000));
        assert!(history.bytes() <= 3 * each);
    }
}
