//! The piano roll as an image: high notes at the top, the seed part and the
//! generated continuation or fill in different colours, locked notes in
//! their own, the scale's rows shaded, the 9-step seed window, ghost notes
//! and the playhead drawn over it. The pointer draws, moves, resizes,
//! selects and locks notes, picks the seed window and a span on the ruler,
//! and sets the pitch range with the keyboard strip's two handles.

use eframe::egui::{
    self, Color32, ColorImage, Pos2, Rect, Sense, Stroke, TextureHandle, TextureOptions, Vec2,
};

use super::Command;
use super::document::{Locks, note_at, notes_in};
use super::generation::{Ghost, Heard};
use super::parts::{PartsView, part_colour, velocity_shade};
use crate::arrangement::Performance;
use crate::limits;
use crate::model::WINDOW_STEPS;
use crate::roll::{PITCH_COUNT, PianoRoll, Pitch, RollNote, mask_bits};

/// Columns per texture: GPUs refuse textures wider than 8192 pixels.
const TEXTURE_COLUMNS: usize = 4096;
const BACKGROUND: Color32 = Color32::from_rgb(24, 26, 31);
const BLACK_KEY_ROW: Color32 = Color32::from_rgb(19, 21, 25);
const GENERATED_NOTE: Color32 = Color32::from_rgb(255, 168, 64);
const REPLACED_NOTE: Color32 = Color32::from_rgb(70, 78, 96);
const LOCKED_NOTE: Color32 = Color32::from_rgb(190, 240, 255);
/// Rows of the scale in force, a shade lighter than the others.
const SCALE_ROW: Color32 = Color32::from_rgb(34, 39, 49);
/// Rows outside the pitch range generation may use.
const OUT_OF_RANGE_ROW: Color32 = Color32::from_rgb(11, 12, 14);
/// Where the lens shades a note the model finds most unlikely.
const SURPRISING: Color32 = Color32::from_rgb(240, 60, 60);
const GHOST_NOTE: Color32 = Color32::from_rgb(200, 200, 255);
const RANGE_HANDLE: Color32 = Color32::from_rgb(120, 200, 255);
const KEYBOARD_WIDTH: f32 = 34.0;
/// The time ruler above the roll: bar numbers; a click there seeks.
const RULER_HEIGHT: f32 = 14.0;
/// The velocity lane under the roll, when shown.
const VELOCITY_LANE_HEIGHT: f32 = 48.0;

/// What a drag on the roll is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Drag {
    /// Drawing a note from this cell.
    Draw { row: usize, step: usize },
    /// Selecting a rectangle from this cell (Shift held when it began).
    Select { row: usize, step: usize },
    /// Moving `notes`, grabbed at this cell.
    Move {
        notes: Vec<RollNote>,
        row: usize,
        step: usize,
    },
    /// Giving `note` a new end.
    Resize { note: RollNote },
    /// Selecting a span of steps on the ruler from this step.
    Span { step: usize },
    /// Moving the low (false) or high (true) end of the pitch range.
    Range { high: bool },
    /// Locking the notes the brush passes over; `last` is where the
    /// pointer was in the last frame.
    Brush { last: Pos2 },
}

/// What the view keeps between frames: the textures of the roll, rebuilt
/// only when what they show changes, and the drag under way.
#[derive(Default)]
pub struct RollTextures {
    key: u64,
    chunks: Vec<TextureHandle>,
    drag: Option<Drag>,
}

impl std::fmt::Debug for RollTextures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RollTextures")
            .field("key", &self.key)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// What new, moved and resized notes snap to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Snap {
    /// Any step.
    #[default]
    Step,
    Beat,
    Bar,
}

impl Snap {
    pub const ALL: [Snap; 3] = [Snap::Step, Snap::Beat, Snap::Bar];

    pub fn label(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Beat => "beat",
            Self::Bar => "bar",
        }
    }

    /// The grid in force at `step` of `roll`: where the metre there began
    /// and the snap's length in steps.
    fn grid_at(self, roll: &PianoRoll, step: usize) -> (usize, usize) {
        let stretches = roll.metre_stretches();
        let stretch = stretches.iter().rev().find(|s| s.start <= step);
        let (start, meter) = stretch.map_or((0, roll.meta().meter()), |s| (s.start, s.meter));
        let unit = match self {
            Self::Step => 1,
            Self::Beat => meter.steps_per_beat(),
            Self::Bar => meter.steps_per_bar(),
        };
        (start, unit.max(1))
    }

    /// `step` moved down onto the grid.
    pub fn floor(self, roll: &PianoRoll, step: usize) -> usize {
        let (start, unit) = self.grid_at(roll, step);
        if step < start {
            return step;
        }
        start + (step - start) / unit * unit
    }

    /// The snap's length in steps at `step`.
    pub fn unit(self, roll: &PianoRoll, step: usize) -> usize {
        self.grid_at(roll, step).1
    }

    /// A move of `steps` rounded to whole snap lengths.
    fn round_move(self, roll: &PianoRoll, from: usize, steps: isize) -> isize {
        let unit = self.unit(roll, from) as isize;
        (steps as f32 / unit as f32).round() as isize * unit
    }
}

/// What the pointer does on the notes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tool {
    /// Draw, move, resize and select notes.
    #[default]
    Draw,
    /// The lock brush: notes it passes over are locked (right button:
    /// unlocked).
    Lock,
}

/// How the roll is looked at: zoom on both axes, the step under the mouse,
/// the snap and tool, and the view's textures.
#[derive(Debug)]
pub struct View {
    /// Pixels per step.
    pub zoom: f32,
    /// Times the height that fits all 106 pitches.
    pub pitch_zoom: f32,
    pub hovered_step: Option<usize>,
    pub snap: Snap,
    pub tool: Tool,
    /// Rows to scroll into view on the next frame (low, high).
    pub fit: Option<(usize, usize)>,
    pub textures: RollTextures,
    /// Where the last frame drew the grid, for pointing at cells.
    pub(super) screen: Option<Geometry>,
}

impl Default for View {
    fn default() -> Self {
        Self {
            zoom: 6.0,
            pitch_zoom: 1.0,
            hovered_step: None,
            snap: Snap::Step,
            tool: Tool::Draw,
            fit: None,
            textures: RollTextures::default(),
            screen: None,
        }
    }
}

impl View {
    /// Where the last frame drew the middle of the cell at `row`, `step`.
    pub fn cell_on_screen(&self, row: usize, step: usize) -> Option<Pos2> {
        let g = self.screen?;
        Some(Pos2::new(
            g.grid.left() + (step as f32 + 0.5) * g.zoom,
            g.grid.top() + (PITCH_COUNT as f32 - 0.5 - row as f32) * g.row_height,
        ))
    }

    /// Where the last frame drew the ruler above `step`.
    pub fn ruler_on_screen(&self, step: usize) -> Option<Pos2> {
        let g = self.screen?;
        Some(Pos2::new(
            g.grid.left() + (step as f32 + 0.5) * g.zoom,
            g.ruler_bottom - RULER_HEIGHT / 2.0,
        ))
    }

    /// Where the last frame drew the pitch range's high (or low) handle.
    pub fn range_handle_on_screen(&self, range: (usize, usize), high: bool) -> Option<Pos2> {
        let g = self.screen?;
        let y = if high {
            g.grid.top() + (PITCH_COUNT - 1 - range.1) as f32 * g.row_height
        } else {
            g.grid.top() + (PITCH_COUNT - range.0) as f32 * g.row_height
        };
        Some(Pos2::new(g.strip_right - KEYBOARD_WIDTH / 2.0, y))
    }

    /// Zooms the pitches so that the music's range (and a little around it)
    /// fills the view, scrolled to it on the next frame.
    pub fn fit_pitches(&mut self, roll: &PianoRoll) {
        let Some((low, high)) = roll.pitch_range() else {
            return;
        };
        let (low, high) = (
            low.row().saturating_sub(3),
            (high.row() + 3).min(PITCH_COUNT - 1),
        );
        let span = (high - low + 1) as f32;
        self.pitch_zoom = limits::PITCH_ZOOM.clamp(PITCH_COUNT as f32 / span);
        self.fit = Some((low, high));
    }
}

fn is_black_key(row: usize) -> bool {
    matches!((row + 21) % 12, 1 | 3 | 6 | 8 | 10)
}

impl RollTextures {
    /// Makes sure the textures show `input`; `input.key` identifies the
    /// content, so they are rebuilt only when it changes.
    fn update(&mut self, ctx: &egui::Context, input: &RollViewInput<'_>) {
        if input.key == self.key && !self.chunks.is_empty() {
            return;
        }
        self.key = input.key;
        self.chunks.clear();
        let columns = input.columns();
        let surprise = input.surprise_by_cell();
        for first in (0..columns.max(1)).step_by(TEXTURE_COLUMNS) {
            let width = (columns - first).clamp(1, TEXTURE_COLUMNS);
            let played = played_colours(input, first, width);
            let mut image = ColorImage::filled([width, PITCH_COUNT], BACKGROUND);
            for x in 0..width {
                let step = first + x;
                for row in 0..PITCH_COUNT {
                    let part = played[row * width + x];
                    let shaded = surprise.as_ref().and_then(|s| s.get(&(step, row)).copied());
                    image.pixels[(PITCH_COUNT - 1 - row) * width + x] =
                        input.cell_colour(step, row, part, shaded);
                }
            }
            self.chunks.push(ctx.load_texture(
                format!("roll-{first}"),
                image,
                TextureOptions::NEAREST,
            ));
        }
    }
}

/// The colour of each cell of columns `first..first + width` that a shown
/// part plays (`[row * width + x]`): the part's colour shaded by velocity;
/// drum hits (which have no cells) as one dim cell at their key.
fn played_colours(input: &RollViewInput<'_>, first: usize, width: usize) -> Vec<Option<Color32>> {
    let mut colours = vec![None; PITCH_COUNT * width];
    let end = first + width;
    for note in &input.performance.notes {
        if note.start >= end || note.end() <= first || !input.parts.visible(note.part) {
            continue;
        }
        let Some(pitch) = Pitch::from_midi(note.key) else {
            continue;
        };
        let colour = velocity_shade(part_colour(input.performance, note.part), note.velocity);
        let cells = if note.in_roll {
            note.start..note.end()
        } else {
            note.start..note.start + 1
        };
        for step in cells.start.max(first)..cells.end.min(end) {
            let cell = &mut colours[pitch.row() * width + step - first];
            // A pitched note shows over a drum hit on the same cell.
            if note.in_roll || cell.is_none() {
                *cell = Some(colour);
            }
        }
    }
    colours
}

/// A rectangle of the roll: pitch rows and steps, both inclusive-exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub rows: (usize, usize),
    pub steps: (usize, usize),
}

/// A continuation or fill as the view shows it.
#[derive(Clone, Copy, Debug)]
pub struct GeneratedView<'a> {
    /// The step it starts at.
    pub from: usize,
    pub steps: &'a [u128],
    /// Where the music it replaces ends: the roll's end for a continuation,
    /// the passage's end for a fill.
    pub replaces_to: usize,
    /// The rows it writes (a fill of some pitches keeps the others).
    pub rows: u128,
}

/// What the view needs to draw one frame.
pub struct RollViewInput<'a> {
    /// The roll the seed window is picked from.
    pub source: &'a PianoRoll,
    pub generated: Option<GeneratedView<'a>>,
    /// Changes whenever anything the textures show does.
    pub key: u64,
    pub seed_start: usize,
    pub playhead: Option<f64>,
    /// Horizontal pixels per step.
    pub zoom: f32,
    /// Vertical zoom: 1 fits all 106 pitches in the view.
    pub pitch_zoom: f32,
    pub selection: Option<Selection>,
    /// The source's notes as its parts play them (colours, velocities).
    pub performance: &'a Performance,
    /// Which parts show.
    pub parts: &'a PartsView,
    pub locked: &'a Locks,
    /// The scale's rows, shaded (0: no scale known).
    pub scale_rows: u128,
    /// The pitch range generation may use, rows low..=high.
    pub range: (usize, usize),
    pub ghost: Option<&'a Ghost>,
    /// The lens's reading of the source, when the lens is on.
    pub heard: Option<&'a Heard>,
    pub tool: Tool,
    pub snap: Snap,
}

impl RollViewInput<'_> {
    /// Steps drawn: the source, or further where the continuation ends later.
    fn columns(&self) -> usize {
        let generated_end = self.generated.map_or(0, |g| g.from + g.steps.len());
        let ghost_end = self.ghost.map_or(0, |g| g.first_step + g.cells.len());
        self.source.steps().max(generated_end).max(ghost_end)
    }

    fn is_locked(&self, step: usize, row: usize) -> bool {
        self.locked
            .get(&step)
            .is_some_and(|mask| mask >> row & 1 == 1)
    }

    /// The lens's surprise (0..1 of its shading) of each sounding source
    /// cell, when the lens is on and read the source as it is now.
    fn surprise_by_cell(&self) -> Option<std::collections::HashMap<(usize, usize), f32>> {
        let heard = self.heard?;
        if heard.steps != self.source.sounding_masks() {
            return None;
        }
        let mut cells = std::collections::HashMap::new();
        let mut surprise = heard.surprise();
        for (step, &mask) in heard.steps.iter().enumerate() {
            for row in mask_bits(mask) {
                let nats = surprise.next().unwrap_or(0.0);
                // Likely notes (p >= 0.5) keep their colour; p of 2% or
                // less is fully red.
                let shade = ((nats - std::f32::consts::LN_2) / 3.2).clamp(0.0, 1.0);
                cells.insert((step, row), shade);
            }
        }
        Some(cells)
    }

    /// The colour of one cell: generated, locked, replaced, played (shaded
    /// by the lens), or the row's background.
    fn cell_colour(
        &self,
        step: usize,
        row: usize,
        part: Option<Color32>,
        surprise: Option<f32>,
    ) -> Color32 {
        let bit = 1u128 << row;
        let original = self.source.sounding_mask(step) & bit != 0;
        if let Some(g) = self.generated
            && step >= g.from
            && step < g.replaces_to
            && g.rows & bit != 0
        {
            let new = step
                .checked_sub(g.from)
                .and_then(|k| g.steps.get(k))
                .is_some_and(|mask| mask & bit != 0);
            return if new && self.is_locked(step, row) {
                LOCKED_NOTE
            } else if new {
                GENERATED_NOTE
            } else if original {
                // The source the continuation or fill replaces: dimmed.
                REPLACED_NOTE
            } else {
                // A drum hit has no cells: it shows where nothing else does.
                part.unwrap_or_else(|| self.row_background(row))
            };
        }
        if original && self.is_locked(step, row) {
            return LOCKED_NOTE;
        }
        match (part, surprise) {
            (Some(colour), Some(shade)) => lerp_colour(colour, SURPRISING, shade),
            (Some(colour), None) => colour,
            (None, _) => self.row_background(row),
        }
    }

    fn row_background(&self, row: usize) -> Color32 {
        if row < self.range.0 || row > self.range.1 {
            OUT_OF_RANGE_ROW
        } else if self.scale_rows >> row & 1 == 1 {
            SCALE_ROW
        } else if is_black_key(row) {
            BLACK_KEY_ROW
        } else {
            BACKGROUND
        }
    }
}

fn lerp_colour(from: Color32, to: Color32, t: f32) -> Color32 {
    let mix = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * t).round() as u8;
    Color32::from_rgb(
        mix(from.r(), to.r()),
        mix(from.g(), to.g()),
        mix(from.b(), to.b()),
    )
}

/// Draws the roll and returns what the user asked for.
pub fn show(ui: &mut egui::Ui, view: &mut View, input: &RollViewInput<'_>) -> Vec<Command> {
    let mut commands = Vec::new();
    view.textures.update(ui.ctx(), input);
    let steps = input.columns().max(1);
    let lane = if input.parts.velocity_lane {
        VELOCITY_LANE_HEIGHT
    } else {
        0.0
    };
    let row_height = ((ui.available_height() - 8.0 - RULER_HEIGHT - lane) / PITCH_COUNT as f32)
        .clamp(2.0, 8.0)
        * limits::PITCH_ZOOM.clamp(input.pitch_zoom);
    let size = Vec2::new(
        KEYBOARD_WIDTH + steps as f32 * input.zoom,
        RULER_HEIGHT + PITCH_COUNT as f32 * row_height + lane,
    );
    let mut scroll = egui::ScrollArea::both().id_salt("roll-scroll");
    if let Some((_, high)) = view.fit.take() {
        // The highest row to fit at the top of the view.
        scroll = scroll.vertical_scroll_offset((PITCH_COUNT - 1 - high) as f32 * row_height);
    }
    scroll.show(ui, |ui| {
        let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
        let painter = ui.painter_at(rect);
        let grid = Rect::from_min_max(
            rect.min + Vec2::new(KEYBOARD_WIDTH, RULER_HEIGHT),
            rect.max - Vec2::new(0.0, lane),
        );
        // The image, one texture per chunk of columns.
        for (index, texture) in view.textures.chunks.iter().enumerate() {
            let first = (index * TEXTURE_COLUMNS) as f32 * input.zoom;
            let width = texture.size()[0] as f32 * input.zoom;
            let chunk_rect = Rect::from_min_size(
                grid.min + Vec2::new(first, 0.0),
                Vec2::new(width, grid.height()),
            );
            painter.image(
                texture.id(),
                chunk_rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        // The ruler and the keyboard strip stay in view however the roll
        // is scrolled.
        let visible = ui.clip_rect();
        let sticky = Rect::from_min_max(
            Pos2::new(
                rect.left().max(visible.left()),
                rect.top().max(visible.top()),
            ),
            rect.max,
        );
        paint_ghost(&painter, grid, input, row_height);
        paint_overlays(&painter, grid, input);
        paint_grid(&painter, sticky, grid, input, row_height);
        if lane > 0.0 {
            let lane_rect = Rect::from_min_max(
                Pos2::new(grid.left(), grid.bottom()),
                Pos2::new(grid.right(), rect.bottom()),
            );
            paint_velocity_lane(&painter, lane_rect, input);
            if let Some(command) = velocity_pointer(&response, lane_rect, input, &painter) {
                commands.push(command);
            }
        }
        let geometry = Geometry {
            grid,
            row_height,
            zoom: input.zoom,
            ruler_bottom: sticky.top() + RULER_HEIGHT,
            strip_right: sticky.left() + KEYBOARD_WIDTH,
        };
        view.screen = Some(geometry);
        commands.extend(pointer(
            &response,
            geometry,
            input,
            &mut view.textures.drag,
            &painter,
        ));
    });
    commands
}

/// The ghost notes: faint cells, as opaque as the model is sure of them.
fn paint_ghost(painter: &egui::Painter, grid: Rect, input: &RollViewInput<'_>, row_height: f32) {
    let Some(ghost) = input.ghost else {
        return;
    };
    for (k, &mask) in ghost.cells.iter().enumerate() {
        let step = ghost.first_step + k;
        for row in mask_bits(mask) {
            let p = ghost
                .probabilities
                .get(k * PITCH_COUNT + row)
                .copied()
                .unwrap_or(0.5);
            let alpha = (40.0 + 160.0 * p.clamp(0.0, 1.0)) as u8;
            let top = grid.top() + (PITCH_COUNT - 1 - row) as f32 * row_height;
            let cell = Rect::from_min_size(
                Pos2::new(grid.left() + step as f32 * input.zoom, top),
                Vec2::new(input.zoom, row_height),
            );
            painter.rect_filled(
                cell,
                0.0,
                Color32::from_rgba_unmultiplied(
                    GHOST_NOTE.r(),
                    GHOST_NOTE.g(),
                    GHOST_NOTE.b(),
                    alpha,
                ),
            );
        }
    }
}

/// The seed window, where generation begins, the selection and the playhead.
fn paint_overlays(painter: &egui::Painter, grid: Rect, input: &RollViewInput<'_>) {
    let x_of = |step: f64| grid.left() + step as f32 * input.zoom;
    // The seed window and where generation begins.
    let seed = Rect::from_min_max(
        Pos2::new(x_of(input.seed_start as f64), grid.top()),
        Pos2::new(
            x_of((input.seed_start + WINDOW_STEPS) as f64),
            grid.bottom(),
        ),
    );
    painter.rect_filled(seed, 0.0, Color32::from_rgba_unmultiplied(90, 160, 255, 45));
    painter.rect_stroke(
        seed,
        0.0,
        Stroke::new(1.5, Color32::from_rgb(90, 160, 255)),
        egui::StrokeKind::Inside,
    );
    if let Some(generated) = input.generated {
        for step in [
            Some(generated.from),
            (generated.replaces_to != usize::MAX).then_some(generated.replaces_to),
        ]
        .into_iter()
        .flatten()
        {
            let x = x_of(step as f64);
            painter.line_segment(
                [Pos2::new(x, grid.top()), Pos2::new(x, grid.bottom())],
                Stroke::new(2.0, GENERATED_NOTE),
            );
        }
    }
    if let Some(selection) = input.selection {
        let row_height = grid.height() / PITCH_COUNT as f32;
        let rect = Rect::from_min_max(
            Pos2::new(
                x_of(selection.steps.0 as f64),
                grid.top() + (PITCH_COUNT - selection.rows.1) as f32 * row_height,
            ),
            Pos2::new(
                x_of(selection.steps.1 as f64),
                grid.top() + (PITCH_COUNT - selection.rows.0) as f32 * row_height,
            ),
        );
        painter.rect_filled(
            rect,
            0.0,
            Color32::from_rgba_unmultiplied(240, 240, 120, 18),
        );
        painter.rect_stroke(
            rect,
            0.0,
            Stroke::new(1.5, Color32::from_rgb(240, 240, 120)),
            egui::StrokeKind::Inside,
        );
    }
    if let Some(position) = input.playhead {
        let x = x_of(position);
        painter.line_segment(
            [Pos2::new(x, grid.top()), Pos2::new(x, grid.bottom())],
            Stroke::new(2.0, Color32::WHITE),
        );
    }
}

/// Bar and beat lines, the ruler's bar numbers and the keyboard strip.
fn paint_grid(
    painter: &egui::Painter,
    rect: Rect,
    grid: Rect,
    input: &RollViewInput<'_>,
    row_height: f32,
) {
    let steps = input.columns().max(1);
    let x_of = |step: f64| grid.left() + step as f32 * input.zoom;
    // `rect` starts where the view does: the ruler is drawn at its top.
    let ruler_bottom = rect.top() + RULER_HEIGHT;
    painter.rect_filled(
        Rect::from_min_max(
            Pos2::new(grid.left(), rect.top()),
            Pos2::new(rect.right(), ruler_bottom),
        ),
        0.0,
        Color32::from_gray(30),
    );
    let lines_top = grid.top().max(ruler_bottom);
    // Bar and beat lines from the time signatures, each metre counted from
    // where it begins; the ruler numbers the bars and names each metre.
    let stretches = input.source.metre_stretches();
    let mut bar = 0usize;
    // Where the last ruler label ends: a label that would overlap it is left out.
    let mut label_end = f32::MIN;
    for (index, stretch) in stretches.iter().enumerate() {
        let end = stretches
            .get(index + 1)
            .map_or(steps + 1, |next| next.start.min(steps + 1));
        let (per_beat, per_bar) = (
            stretch.meter.steps_per_beat().max(1),
            stretch.meter.steps_per_bar().max(1),
        );
        if input.zoom * per_beat as f32 >= 4.0 {
            for step in (stretch.start..end).step_by(per_beat) {
                let colour = if (step - stretch.start).is_multiple_of(per_bar) {
                    Color32::from_gray(70)
                } else {
                    Color32::from_gray(40)
                };
                let x = x_of(step as f64);
                painter.line_segment(
                    [Pos2::new(x, lines_top), Pos2::new(x, grid.bottom())],
                    Stroke::new(1.0, colour),
                );
            }
        }
        let every = (40.0 / (per_bar as f32 * input.zoom)).ceil().max(1.0) as usize;
        let ruler_y = rect.top() + RULER_HEIGHT / 2.0;
        // Where a metre begins, its bar number names it too.
        let named = index > 0 || stretch.signature != crate::meter::TimeSignature::COMMON;
        for step in (stretch.start..end.min(steps)).step_by(per_bar) {
            let first = step == stretch.start && named;
            let x = x_of(step as f64) + 2.0;
            if (bar.is_multiple_of(every) || first) && x >= label_end {
                let (text, colour) = if first {
                    (
                        format!("{} {}", bar + 1, stretch.signature),
                        Color32::from_rgb(240, 200, 120),
                    )
                } else {
                    (format!("{}", bar + 1), Color32::from_gray(170))
                };
                let drawn = painter.text(
                    Pos2::new(x, ruler_y),
                    egui::Align2::LEFT_CENTER,
                    text,
                    egui::FontId::monospace(9.0),
                    colour,
                );
                label_end = drawn.right() + 4.0;
            }
            bar += 1;
        }
    }
    paint_keyboard_strip(painter, rect, grid, input, row_height);
}

/// The keyboard strip: a label at every C, the rows outside the pitch
/// range dimmed, and the range's two handles.
fn paint_keyboard_strip(
    painter: &egui::Painter,
    rect: Rect,
    grid: Rect,
    input: &RollViewInput<'_>,
    row_height: f32,
) {
    // `rect` starts where the view does: the strip is drawn at its left.
    let right = rect.left() + KEYBOARD_WIDTH;
    painter.rect_filled(
        Rect::from_min_max(rect.min, Pos2::new(right, rect.bottom())),
        0.0,
        Color32::from_gray(35),
    );
    let strip = Rect::from_min_max(
        Pos2::new(rect.left(), grid.top()),
        Pos2::new(right, grid.bottom()),
    );
    let y_of_row = |row: usize| grid.top() + (PITCH_COUNT - 1 - row) as f32 * row_height;
    // Rows outside the pitch range, dimmed on the strip too.
    let (low, high) = input.range;
    if high + 1 < PITCH_COUNT {
        painter.rect_filled(
            Rect::from_min_max(strip.min, Pos2::new(strip.right(), y_of_row(high))),
            0.0,
            Color32::from_gray(18),
        );
    }
    if low > 0 {
        painter.rect_filled(
            Rect::from_min_max(
                Pos2::new(strip.left(), y_of_row(low) + row_height),
                strip.max,
            ),
            0.0,
            Color32::from_gray(18),
        );
    }
    for row in (0..PITCH_COUNT).filter(|row| (row + 21) % 12 == 0) {
        let y = y_of_row(row);
        if let Some(pitch) = Pitch::from_row(row) {
            painter.text(
                Pos2::new(rect.left() + 2.0, y + row_height / 2.0),
                egui::Align2::LEFT_CENTER,
                pitch.name(),
                egui::FontId::monospace(9.0),
                Color32::from_gray(200),
            );
        }
    }
    // The range's two handles: a bar on the top edge of the high row and
    // on the bottom edge of the low row.
    for (y, pointing_down) in [(y_of_row(high), true), (y_of_row(low) + row_height, false)] {
        painter.line_segment(
            [Pos2::new(strip.left(), y), Pos2::new(strip.right(), y)],
            Stroke::new(2.0, RANGE_HANDLE),
        );
        let tip = if pointing_down { y + 5.0 } else { y - 5.0 };
        painter.add(egui::Shape::convex_polygon(
            vec![
                Pos2::new(strip.right() - 10.0, y),
                Pos2::new(strip.right(), y),
                Pos2::new(strip.right() - 5.0, tip),
            ],
            RANGE_HANDLE,
            Stroke::NONE,
        ));
    }
}

/// The velocity lane: a stem per note start of the shown parts, as tall as
/// its velocity, in its part's colour.
fn paint_velocity_lane(painter: &egui::Painter, lane: Rect, input: &RollViewInput<'_>) {
    painter.rect_filled(lane, 0.0, Color32::from_gray(28));
    painter.line_segment(
        [lane.left_top(), lane.right_top()],
        Stroke::new(1.0, Color32::from_gray(60)),
    );
    let clip = painter.clip_rect();
    for note in &input.performance.notes {
        if !input.parts.visible(note.part) {
            continue;
        }
        let x = lane.left() + (note.start as f32 + 0.5) * input.zoom;
        if x < clip.left() - 2.0 || x > clip.right() + 2.0 {
            continue;
        }
        let height = (lane.height() - 4.0) * f32::from(note.velocity) / 127.0;
        let colour = part_colour(input.performance, note.part);
        painter.line_segment(
            [
                Pos2::new(x, lane.bottom() - 1.0),
                Pos2::new(x, lane.bottom() - 1.0 - height),
            ],
            Stroke::new((input.zoom * 0.4).clamp(1.0, 3.0), colour),
        );
    }
}

/// Clicking or dragging in the velocity lane sets the velocity of the notes
/// that start at that step (within the selection's rows when it covers the
/// step), on release; while dragging, a line previews it.
fn velocity_pointer(
    response: &egui::Response,
    lane: Rect,
    input: &RollViewInput<'_>,
    painter: &egui::Painter,
) -> Option<Command> {
    let pos = response.interact_pointer_pos()?;
    let press = response.ctx.input(|i| i.pointer.press_origin())?;
    if !lane.contains(press) {
        return None;
    }
    let step = ((press.x - lane.left()) / input.zoom).max(0.0) as usize;
    let share = ((lane.bottom() - 2.0 - pos.y) / (lane.height() - 4.0)).clamp(0.0, 1.0);
    let velocity = (share * 127.0).round().max(1.0) as u8;
    if response.clicked() || response.drag_stopped() {
        let rows = input
            .selection
            .filter(|s| (s.steps.0..s.steps.1).contains(&step))
            .map_or((0, PITCH_COUNT), |s| s.rows);
        return Some(Command::SetVelocity {
            step,
            rows,
            velocity,
        });
    }
    let x = lane.left() + (step as f32 + 0.5) * input.zoom;
    painter.line_segment(
        [Pos2::new(x - 6.0, pos.y), Pos2::new(x + 6.0, pos.y)],
        Stroke::new(2.0, Color32::WHITE),
    );
    painter.text(
        Pos2::new(x + 8.0, pos.y),
        egui::Align2::LEFT_CENTER,
        velocity.to_string(),
        egui::FontId::monospace(10.0),
        Color32::WHITE,
    );
    None
}

/// Where the grid lies on screen.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    grid: Rect,
    row_height: f32,
    zoom: f32,
    /// Where the ruler (kept at the top of the view) ends.
    ruler_bottom: f32,
    /// Where the keyboard strip (kept at the left of the view) ends.
    strip_right: f32,
}

impl Geometry {
    /// The (row, step) of a point, kept on the roll's rows.
    fn cell(&self, pos: Pos2) -> (usize, usize) {
        let step = ((pos.x - self.grid.left()) / self.zoom).max(0.0) as usize;
        let row = PITCH_COUNT
            - 1
            - (((pos.y - self.grid.top()) / self.row_height).max(0.0) as usize)
                .min(PITCH_COUNT - 1);
        (row, step)
    }

    /// The rectangle of rows `rows` over steps `steps`.
    fn rect(&self, rows: (usize, usize), steps: (usize, usize)) -> Rect {
        Rect::from_min_max(
            Pos2::new(
                self.grid.left() + steps.0 as f32 * self.zoom,
                self.grid.top() + (PITCH_COUNT - rows.1) as f32 * self.row_height,
            ),
            Pos2::new(
                self.grid.left() + steps.1 as f32 * self.zoom,
                self.grid.top() + (PITCH_COUNT - rows.0) as f32 * self.row_height,
            ),
        )
    }

    /// Whether `pos` lies on the last few pixels of `note`: a resize grip.
    fn on_end_of(&self, note: &RollNote, pos: Pos2) -> bool {
        let end_x = self.grid.left() + note.end() as f32 * self.zoom;
        let grip = (self.zoom * 0.4).clamp(2.0, 8.0);
        note.len > 1 && pos.x >= end_x - grip
            || note.len == 1 && self.zoom >= 8.0 && pos.x >= end_x - grip
    }
}

const PREVIEW: Color32 = Color32::from_rgba_unmultiplied_const(150, 180, 230, 110);

/// The pointer over the roll. On the ruler: click for the seed window, drag
/// to select a span of steps, right-click to seek. On the keyboard strip:
/// drag a range handle. On the notes, with the draw tool: click or drag to
/// draw a note, drag a note to move it (the selection's notes when it is
/// one of them), drag its end to resize it, click a note to select it,
/// Shift+drag to select, right-click to erase; with the lock brush: click
/// or drag to lock notes, right-click to unlock one. Hovering names the
/// pitch and step.
fn pointer(
    response: &egui::Response,
    geometry: Geometry,
    input: &RollViewInput<'_>,
    drag: &mut Option<Drag>,
    painter: &egui::Painter,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let grid = geometry.grid;
    let hovered = response.hover_pos().filter(|pos| {
        grid.contains(*pos) && pos.y >= geometry.ruler_bottom && pos.x >= geometry.strip_right
    });
    commands.push(Command::Hover(hovered.map(|pos| geometry.cell(pos).1)));
    if let Some(pos) = hovered {
        let (row, step) = geometry.cell(pos);
        if let Some(pitch) = Pitch::from_row(row) {
            let locked = if input.is_locked(step, row) && input.source.is_sounding(step, pitch) {
                " (locked)"
            } else {
                ""
            };
            response.clone().on_hover_text_at_pointer(format!(
                "{} (MIDI {}), step {step}{locked}",
                pitch.name(),
                pitch.midi()
            ));
        }
    }
    let Some(pos) = response.interact_pointer_pos() else {
        *drag = None;
        return commands;
    };
    let press = response
        .ctx
        .input(|i| i.pointer.press_origin())
        .unwrap_or(pos);
    // The velocity lane below the grid takes its own presses.
    if press.y > grid.bottom() {
        return commands;
    }
    if press.y < geometry.ruler_bottom && press.x >= geometry.strip_right {
        ruler(
            response,
            geometry,
            input,
            drag,
            (press, pos),
            painter,
            &mut commands,
        );
    } else if press.x < geometry.strip_right {
        keyboard_strip(response, geometry, input, drag, pos, press, &mut commands);
    } else if input.tool == Tool::Lock {
        lock_brush(response, geometry, input, drag, (press, pos), &mut commands);
    } else {
        notes(response, geometry, input, drag, pos, painter, &mut commands);
    }
    commands
}

/// The ruler: a click places the seed window, a drag selects a span of
/// steps (every pitch), a right-click seeks.
fn ruler(
    response: &egui::Response,
    geometry: Geometry,
    input: &RollViewInput<'_>,
    drag: &mut Option<Drag>,
    (press, pos): (Pos2, Pos2),
    painter: &egui::Painter,
    commands: &mut Vec<Command>,
) {
    let (_, step) = geometry.cell(pos);
    if response.secondary_clicked() {
        commands.push(Command::Seek(f64::from(
            (pos.x - geometry.grid.left()) / geometry.zoom,
        )));
    } else if response.clicked() {
        // The window is centred on the pointer and kept in the roll.
        let latest = input.source.steps().saturating_sub(WINDOW_STEPS);
        let start = step.saturating_sub(WINDOW_STEPS / 2).min(latest);
        if start != input.seed_start {
            commands.push(Command::SetSeed(start));
        }
    } else if response.drag_started() {
        *drag = Some(Drag::Span {
            step: geometry.cell(press).1,
        });
    }
    if let Some(Drag::Span { step: first }) = *drag {
        let end_limit = input.source.steps();
        let steps = (
            first.min(step).min(end_limit.saturating_sub(1)),
            (first.max(step) + 1).min(end_limit),
        );
        if response.drag_stopped() {
            *drag = None;
            commands.push(Command::Select(Some(Selection {
                rows: (0, PITCH_COUNT),
                steps,
            })));
        } else {
            painter.rect_filled(geometry.rect((0, PITCH_COUNT), steps), 0.0, PREVIEW);
        }
    }
}

/// The keyboard strip: a drag moves the nearer end of the pitch range.
fn keyboard_strip(
    response: &egui::Response,
    geometry: Geometry,
    input: &RollViewInput<'_>,
    drag: &mut Option<Drag>,
    pos: Pos2,
    press: Pos2,
    commands: &mut Vec<Command>,
) {
    let y_of_row =
        |row: usize| geometry.grid.top() + (PITCH_COUNT - 1 - row) as f32 * geometry.row_height;
    let (low, high) = input.range;
    if response.drag_started() {
        // The nearer handle follows the pointer, so neither has to be hit
        // exactly (the low one can sit under the scroll bar).
        let to_high = (press.y - y_of_row(high)).abs();
        let to_low = (press.y - (y_of_row(low) + geometry.row_height)).abs();
        *drag = Some(Drag::Range {
            high: to_high <= to_low,
        });
    }
    if let Some(Drag::Range { high: moving_high }) = *drag {
        let (row, _) = geometry.cell(pos);
        let range = if moving_high {
            (low, row.max(low))
        } else {
            (row.min(high), high)
        };
        if range != input.range {
            commands.push(Command::SetRange(range));
        }
        if response.drag_stopped() {
            *drag = None;
        }
    }
}

/// The lock brush: the notes it passes over are locked (every cell along
/// the pointer's path, however fast it moves); right-click unlocks the note
/// under the pointer.
fn lock_brush(
    response: &egui::Response,
    geometry: Geometry,
    input: &RollViewInput<'_>,
    drag: &mut Option<Drag>,
    (press, pos): (Pos2, Pos2),
    commands: &mut Vec<Command>,
) {
    if response.secondary_clicked() {
        let (row, step) = geometry.cell(pos);
        commands.push(Command::LockAt {
            row,
            step,
            lock: false,
        });
        return;
    }
    let from = match *drag {
        Some(Drag::Brush { last }) => last,
        _ if response.clicked() || response.drag_started() => press,
        _ => return,
    };
    // Cells a quarter of the smaller cell side apart along the path.
    let spacing = (geometry.zoom.min(geometry.row_height) / 4.0).max(0.5);
    let samples = ((pos - from).length() / spacing).ceil().max(1.0) as usize;
    let mut locked = Vec::new();
    for k in 0..=samples {
        let (row, step) = geometry.cell(from + (pos - from) * (k as f32 / samples as f32));
        let Some(note) = note_at(input.source, row, step) else {
            continue;
        };
        if !input.is_locked(note.start, row) && !locked.contains(&(row, note.start)) {
            locked.push((row, note.start));
            commands.push(Command::LockAt {
                row,
                step: note.start,
                lock: true,
            });
        }
    }
    *drag = (!response.clicked() && !response.drag_stopped()).then_some(Drag::Brush { last: pos });
}

/// What a drag that begins at `press` does with the draw tool: select
/// (Shift), resize a note by its end, move a note (the selection's notes
/// when it is one of them), or draw a new one.
fn drag_on_notes(geometry: Geometry, input: &RollViewInput<'_>, press: Pos2, shift: bool) -> Drag {
    let (row, step) = geometry.cell(press);
    if shift {
        return Drag::Select { row, step };
    }
    let Some(note) = note_at(input.source, row, step) else {
        return Drag::Draw { row, step };
    };
    if geometry.on_end_of(&note, press) {
        return Drag::Resize { note };
    }
    let in_selection = input.selection.is_some_and(|s| {
        (s.rows.0..s.rows.1).contains(&row) && (s.steps.0..s.steps.1).contains(&note.start)
    });
    let notes = match input.selection {
        Some(selection) if in_selection => notes_in(input.source, selection),
        _ => vec![note],
    };
    Drag::Move { notes, row, step }
}

/// A click with the draw tool: Shift drops the selection, a note is
/// selected, an empty cell gets a note one snap length long.
fn click_on_notes(input: &RollViewInput<'_>, row: usize, step: usize, shift: bool) -> Command {
    let roll = input.source;
    if shift {
        return Command::Select(None);
    }
    if let Some(note) = note_at(roll, row, step) {
        return Command::Select(Some(Selection {
            rows: (row, row + 1),
            steps: (note.start, note.end()),
        }));
    }
    let start = input.snap.floor(roll, step);
    Command::DrawNote {
        row,
        start,
        end: start + input.snap.unit(roll, step),
    }
}

/// Where the notes being moved would land.
fn preview_move(
    painter: &egui::Painter,
    geometry: Geometry,
    notes: &[RollNote],
    by_steps: isize,
    by_rows: isize,
) {
    for note in notes {
        let (Some(row), Some(start)) = (
            note.pitch.row().checked_add_signed(by_rows),
            note.start.checked_add_signed(by_steps),
        ) else {
            continue;
        };
        painter.rect_filled(
            geometry.rect((row, row + 1), (start, start + note.len)),
            0.0,
            PREVIEW,
        );
    }
}

/// The notes with the draw tool.
fn notes(
    response: &egui::Response,
    geometry: Geometry,
    input: &RollViewInput<'_>,
    drag: &mut Option<Drag>,
    pos: Pos2,
    painter: &egui::Painter,
    commands: &mut Vec<Command>,
) {
    let (row, step) = geometry.cell(pos);
    let roll = input.source;
    let shift = response.ctx.input(|i| i.modifiers.shift);
    if response.secondary_clicked() {
        commands.push(Command::EraseAt { row, step });
        return;
    }
    if response.clicked() {
        commands.push(click_on_notes(input, row, step, shift));
        return;
    }
    if response.drag_started() {
        let press = response
            .ctx
            .input(|i| i.pointer.press_origin())
            .unwrap_or(pos);
        *drag = Some(drag_on_notes(geometry, input, press, shift));
    }
    let Some(current) = drag.clone() else {
        return;
    };
    let done = response.drag_stopped();
    let (rows, steps, command) = match current {
        Drag::Draw {
            row: first_row,
            step: first,
        } => {
            let start = input.snap.floor(roll, first.min(step));
            let last = first.max(step);
            let end = (input.snap.floor(roll, last) + input.snap.unit(roll, last)).max(start + 1);
            (
                (first_row, first_row + 1),
                (start, end),
                Command::DrawNote {
                    row: first_row,
                    start,
                    end,
                },
            )
        }
        Drag::Select {
            row: first_row,
            step: first,
        } => {
            let (rows, steps) = (
                (first_row.min(row), first_row.max(row) + 1),
                (first.min(step), first.max(step) + 1),
            );
            (
                rows,
                steps,
                Command::Select(Some(Selection { rows, steps })),
            )
        }
        Drag::Move {
            notes,
            row: grabbed_row,
            step: grabbed,
        } => {
            let by_steps = input
                .snap
                .round_move(roll, grabbed, step as isize - grabbed as isize);
            let by_rows = row as isize - grabbed_row as isize;
            preview_move(painter, geometry, &notes, by_steps, by_rows);
            if done {
                *drag = None;
                commands.push(Command::MoveNotes {
                    notes,
                    steps: by_steps,
                    rows: by_rows,
                });
            }
            return;
        }
        Drag::Resize { note } => {
            let end =
                (input.snap.floor(roll, step) + input.snap.unit(roll, step)).max(note.start + 1);
            (
                (note.pitch.row(), note.pitch.row() + 1),
                (note.start, end),
                Command::ResizeNote {
                    row: note.pitch.row(),
                    start: note.start,
                    len: end - note.start,
                },
            )
        }
        Drag::Span { .. } | Drag::Range { .. } | Drag::Brush { .. } => return,
    };
    if done {
        *drag = None;
        commands.push(command);
    } else {
        // Preview the note being drawn or resized, or the rectangle being
        // selected.
        painter.rect_filled(geometry.rect(rows, steps), 0.0, PREVIEW);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod unit_tests {
    use super::*;
    use crate::music::{Mode, Scale};
    use crate::roll::RollMeta;

    fn row(midi: u8) -> usize {
        Pitch::from_midi(midi).unwrap().row()
    }

    #[test]
    fn cells_show_scale_rows_range_locks_fills_and_surprise() {
        let (c4, d4, cs4) = (row(60), row(62), row(61));
        let mut roll = PianoRoll::new(8, RollMeta::default()).unwrap();
        roll.add_note(RollNote {
            start: 0,
            pitch: Pitch::from_midi(60).unwrap(),
            len: 4,
        });
        let performance = roll.performance(100);
        let parts = PartsView::default();
        let mut locked = Locks::new();
        locked.insert(1, 1 << c4);
        let filled = [1u128 << d4; 2];
        let input = RollViewInput {
            source: &roll,
            generated: Some(GeneratedView {
                from: 4,
                steps: &filled,
                replaces_to: 6,
                rows: 1 << d4,
            }),
            key: 0,
            seed_start: 0,
            playhead: None,
            zoom: 6.0,
            pitch_zoom: 1.0,
            selection: None,
            performance: &performance,
            parts: &parts,
            locked: &locked,
            scale_rows: Scale {
                tonic: 0,
                mode: Mode::Major,
            }
            .row_mask(),
            range: (row(48), row(84)),
            ghost: None,
            heard: None,
            tool: Tool::Draw,
            snap: Snap::Step,
        };
        let colour = Color32::from_rgb(1, 2, 3);
        let part = Some(colour);
        assert_eq!(input.cell_colour(7, d4, None, None), SCALE_ROW);
        assert_eq!(input.cell_colour(7, cs4, None, None), BLACK_KEY_ROW);
        assert_eq!(input.cell_colour(7, row(90), None, None), OUT_OF_RANGE_ROW);
        assert_eq!(input.cell_colour(1, c4, part, None), LOCKED_NOTE);
        assert_eq!(input.cell_colour(2, c4, part, None), colour);
        // The fill writes D4 over steps 4..6; C4 there is another row.
        assert_eq!(input.cell_colour(4, d4, None, None), GENERATED_NOTE);
        assert_eq!(input.cell_colour(6, d4, None, None), SCALE_ROW);
        assert_eq!(input.cell_colour(2, c4, part, Some(1.0)), SURPRISING);
        assert_eq!(input.cell_colour(2, c4, part, Some(0.0)), colour);
    }

    #[test]
    fn snapping_follows_the_metre() {
        let roll = PianoRoll::new(64, RollMeta::default()).unwrap();
        // 4/4 at four steps a quarter: beats of 4 steps, bars of 16.
        assert_eq!(Snap::Beat.floor(&roll, 7), 4);
        assert_eq!(Snap::Bar.floor(&roll, 31), 16);
        assert_eq!(Snap::Bar.unit(&roll, 0), 16);
        assert_eq!(Snap::Step.floor(&roll, 7), 7);
        assert_eq!(Snap::Beat.round_move(&roll, 0, 3), 4);
        assert_eq!(Snap::Beat.round_move(&roll, 0, -1), 0);
    }
}
