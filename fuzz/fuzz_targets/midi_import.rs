//! Invariant: MIDI import never panics, and whatever it imports survives
//! export -> import unchanged.
#![no_main]

use cadenza_fuzz::midi::{ExportOptions, ImportOptions, export, import};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the grid and the drum option, the rest is the file.
    let Some((&knobs, file)) = data.split_first() else {
        return;
    };
    let options = ImportOptions {
        steps_per_quarter: 1 + knobs % 24,
        include_drums: knobs & 0x80 != 0,
    };
    if let Ok((roll, _report)) = import(file, &options) {
        let again = export(&roll, &ExportOptions::default());
        let (roll_again, _) = import(&again, &options).expect("an exported roll imports");
        assert_eq!(roll, roll_again);
    }
});
