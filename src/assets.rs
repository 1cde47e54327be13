//! What the binary carries so that it works with no files at all.

/// A demo piece embedded in the binary.
#[derive(Clone, Copy, Debug)]
pub struct DemoRoll {
    /// Short name users type (`--seed-file demo:<name>` later, listings now).
    pub name: &'static str,
    /// The file name under `assets/demo/`.
    pub file_name: &'static str,
    /// Standard MIDI File bytes.
    pub midi: &'static [u8],
}

/// The shipped demo pieces; the first is the default.
pub const DEMO_ROLLS: [DemoRoll; 3] = [
    DemoRoll {
        name: "prelude",
        file_name: "prelude-c-major-bwv846.mid",
        midi: include_bytes!("../assets/demo/prelude-c-major-bwv846.mid"),
    },
    DemoRoll {
        name: "chorale-bwv1.6",
        file_name: "chorale-bwv1.6.mid",
        midi: include_bytes!("../assets/demo/chorale-bwv1.6.mid"),
    },
    DemoRoll {
        name: "chorale-bwv328",
        file_name: "chorale-bwv328.mid",
        midi: include_bytes!("../assets/demo/chorale-bwv328.mid"),
    },
];

/// The demo the app and the CLI open when given nothing.
pub fn default_demo() -> &'static DemoRoll {
    &DEMO_ROLLS[0]
}

/// The demo of that name.
pub fn demo(name: &str) -> Option<&'static DemoRoll> {
    DEMO_ROLLS.iter().find(|d| d.name == name)
}
