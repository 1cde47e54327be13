//! How the parts of the roll are shown and heard: colours, and which parts
//! are muted, soloed or hidden. The parts themselves live in the roll's
//! arrangement (and so in the undo history); this is view state.

use eframe::egui::Color32;

use crate::arrangement::Performance;

/// Colours of pitched parts, in order; the first is the roll's colour when it
/// has one part.
const PALETTE: [Color32; 10] = [
    Color32::from_rgb(150, 180, 230),
    Color32::from_rgb(120, 210, 140),
    Color32::from_rgb(230, 130, 160),
    Color32::from_rgb(200, 170, 250),
    Color32::from_rgb(240, 210, 110),
    Color32::from_rgb(110, 210, 215),
    Color32::from_rgb(235, 150, 100),
    Color32::from_rgb(170, 200, 90),
    Color32::from_rgb(250, 160, 220),
    Color32::from_rgb(150, 150, 250),
];
/// Drums, on channel 10.
const DRUM_COLOUR: Color32 = Color32::from_rgb(175, 175, 175);

/// What the user turned on or off for one part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartToggles {
    pub muted: bool,
    pub solo: bool,
    pub hidden: bool,
}

/// One toggle of one part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartToggle {
    Mute,
    Solo,
    Hide,
}

/// The toggles of every part of the document, and whether the velocity lane
/// shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartsView {
    toggles: Vec<PartToggles>,
    pub velocity_lane: bool,
}

impl PartsView {
    /// Matches the toggles to `parts` parts: a new document's parts start
    /// audible and shown.
    pub fn fit(&mut self, parts: usize) {
        self.toggles.resize(parts, PartToggles::default());
    }

    /// Forgets every toggle (another file was opened).
    pub fn reset(&mut self) {
        self.toggles.clear();
    }

    pub fn toggles(&self, part: u16) -> PartToggles {
        self.toggles
            .get(usize::from(part))
            .copied()
            .unwrap_or_default()
    }

    /// Flips one toggle.
    pub fn flip(&mut self, part: u16, toggle: PartToggle) {
        let index = usize::from(part);
        if index >= self.toggles.len() {
            self.toggles.resize(index + 1, PartToggles::default());
        }
        let toggles = &mut self.toggles[index];
        match toggle {
            PartToggle::Mute => toggles.muted = !toggles.muted,
            PartToggle::Solo => toggles.solo = !toggles.solo,
            PartToggle::Hide => toggles.hidden = !toggles.hidden,
        }
    }

    /// Whether `part` sounds: not muted, and soloed when any part is.
    pub fn audible(&self, part: u16) -> bool {
        let any_solo = self.toggles.iter().any(|t| t.solo);
        let toggles = self.toggles(part);
        !toggles.muted && (!any_solo || toggles.solo)
    }

    /// Whether `part` is drawn.
    pub fn visible(&self, part: u16) -> bool {
        !self.toggles(part).hidden
    }
}

/// The colour of `part` in `performance`: drums grey, pitched parts from
/// the palette in order.
pub fn part_colour(performance: &Performance, part: u16) -> Color32 {
    let Some(found) = performance.parts.get(usize::from(part)) else {
        return PALETTE[0];
    };
    if found.is_drums() {
        return DRUM_COLOUR;
    }
    let pitched_before = performance.parts[..usize::from(part)]
        .iter()
        .filter(|p| !p.is_drums())
        .count();
    PALETTE[pitched_before % PALETTE.len()]
}

/// `colour` shaded by a note's velocity: quiet notes darker.
pub fn velocity_shade(colour: Color32, velocity: u8) -> Color32 {
    let strength = 0.35 + 0.65 * f32::from(velocity.min(127)) / 127.0;
    let scale = |channel: u8| (f32::from(channel) * strength).round() as u8;
    Color32::from_rgb(scale(colour.r()), scale(colour.g()), scale(colour.b()))
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn solo_silences_the_others_and_mute_wins_over_solo() {
        let mut view = PartsView::default();
        view.fit(3);
        assert!((0..3).all(|p| view.audible(p)));
        view.flip(1, PartToggle::Solo);
        assert_eq!(
            (0..3).map(|p| view.audible(p)).collect::<Vec<_>>(),
            [false, true, false]
        );
        view.flip(1, PartToggle::Mute);
        assert!(!view.audible(1));
        view.flip(2, PartToggle::Hide);
        assert!(!view.visible(2) && view.visible(0));
        assert!(velocity_shade(PALETTE[0], 20).r() < velocity_shade(PALETTE[0], 120).r());
    }
}
