//! Invariant: PNG import never panics, and whatever it imports survives
//! export -> import unchanged.
#![no_main]

use cadenza_fuzz::image::{decode_png, encode_png};
use cadenza_fuzz::roll::RollMeta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let meta = RollMeta::default();
    if let Ok(roll) = decode_png(data, meta) {
        let png = encode_png(&roll, 0, roll.steps()).expect("a decoded roll encodes");
        let again = decode_png(&png, meta).expect("an encoded roll decodes");
        assert_eq!(roll, again);
    }
});
