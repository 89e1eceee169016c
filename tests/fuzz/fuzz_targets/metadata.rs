//! Coverage-guided fuzzing of the dataset metadata reader: any bytes must give
//! a document or an error, never a panic. Inputs are used both as a whole
//! file and as a JSON body framed with a valid header and checksum, so that
//! the JSON and semantic checks behind the checksum are reached.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use oups::dataset::metadata::decode;
use oups::dataset::state::State;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz_opdmd");
    let _ = decode(data, path).and_then(|doc| State::from_doc(doc, path));
    let mut framed = format!("OUPS-OPDMD 1 {:08x} {}\n", crc32(data), data.len()).into_bytes();
    framed.extend_from_slice(data);
    let _ = decode(&framed, path).and_then(|doc| State::from_doc(doc, path));
});

fn crc32(data: &[u8]) -> u32 {
    // The IEEE CRC-32 (as crc32fast and zlib), bit by bit: speed is not the point here.
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (!(crc & 1)).wrapping_add(1));
        }
    }
    !crc
}
