//! Mutation fuzzing of the two file readers that face untrusted bytes: the
//! dataset metadata (`<name>_opdmd`) and the StatefulLoop state file.
//!
//! Valid files are mutated (bit flips, random bytes, insertions, deletions,
//! truncations, spliced JSON tokens, extreme numbers) and, most of the time,
//! given a correct checksum again so that the parsers behind the checksum are
//! reached. Every input must give `Ok` or an error: a panic fails the test and
//! prints the input. `OUPS_FUZZ_ITERS` sets the number of inputs per reader
//! (20,000 by default, a quarter of that for state files, which go through
//! the disk; run 1,000,000 locally with `OUPS_FUZZ_ITERS=1000000 cargo test
//! --test fuzz_readers`, a debug build, so that overflows panic).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use oups::dataset::metadata::{decode, encode, MetadataDoc, RowGroupRecord};
use oups::dataset::state::State;
use oups::stateful_loop::state_file::{load, save, SectionOut};
use serde_json::{Map, Value};

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn iterations() -> usize {
    std::env::var("OUPS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

const TOKENS: &[&str] = &[
    "-1",
    "0",
    "1e309",
    "-9223372036854775809",
    "18446744073709551616",
    "null",
    "true",
    "\"x\"",
    "[]",
    "{}",
    "\"Timestamp(ns, \\\"UTC\\\")\"",
    "\"Float64\"",
    "\"NaN\"",
    "\"-inf\"",
    "99999999999999999999999999",
    "[{\"file_id\":1,\"n_rows\":1,\"min\":1,\"max\":0}]",
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let n = data.len();
        match rng.below(8) {
            0 if n > 0 => {
                let i = rng.below(n);
                data[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                data[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(n + 1);
                data.insert(i, rng.next() as u8);
            }
            3 if n > 0 => {
                let i = rng.below(n);
                data.remove(i);
            }
            4 => data.truncate(rng.below(n + 1)),
            5 if n > 1 => {
                let (a, b) = (rng.below(n), rng.below(n));
                let (lo, hi) = (a.min(b), a.max(b));
                let copy = data[lo..hi].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, copy);
            }
            _ => {
                // Replace a run of digits or a quoted word by an extreme token.
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let start = rng.below(n + 1);
                let mut end = start;
                while end < n && (data[end].is_ascii_alphanumeric() || data[end] == b'-') {
                    end += 1;
                }
                data.splice(start..end, token.iter().copied());
            }
        }
    }
}

fn metadata_docs() -> Vec<MetadataDoc> {
    let rg = |id: u64, n: u64, min: Value, max: Value| RowGroupRecord {
        file_id: id,
        n_rows: n,
        min,
        max,
        file: None,
    };
    let mut kvm = Map::new();
    kvm.insert("source".into(), Value::from("feed"));
    kvm.insert(
        "nested".into(),
        serde_json::json!({"a": [1, 2, {"b": null}]}),
    );
    vec![
        MetadataDoc {
            ordered_on: Value::from("ts"),
            ordered_field: Some("ts".into()),
            ordered_type: Some("Timestamp(Nanosecond, None)".into()),
            version: 7,
            committed_at: Some(1_700_000_000_000_000_000),
            operation: Some("write".into()),
            restored_from: None,
            writer: None,
            retention: None,
            pins: Default::default(),
            format: 2,
            row_groups: vec![
                rg(0, 10, Value::from(1_000), Value::from(2_000)),
                rg(1000, 5, Value::from(2_000), Value::from(9_000)),
            ],
            key_value_metadata: kvm,
            span: None,
            tag: None,
            lineage: Vec::new(),
        },
        MetadataDoc {
            ordered_on: serde_json::json!(["level0", "ts"]),
            ordered_field: Some("('level0', 'ts')".into()),
            ordered_type: Some("Float64".into()),
            version: 1,
            committed_at: Some(1_700_000_000_000_000_000),
            operation: Some("write".into()),
            restored_from: None,
            writer: None,
            retention: None,
            pins: Default::default(),
            format: 2,
            row_groups: vec![rg(0, 3, Value::from("-1.5"), Value::from("inf"))],
            key_value_metadata: Map::new(),
            span: None,
            tag: None,
            lineage: Vec::new(),
        },
        MetadataDoc {
            ordered_on: Value::from("k"),
            ordered_field: None,
            ordered_type: None,
            version: 0,
            committed_at: Some(1_700_000_000_000_000_000),
            operation: Some("write".into()),
            restored_from: None,
            writer: None,
            retention: None,
            pins: Default::default(),
            format: 2,
            row_groups: vec![],
            key_value_metadata: Map::new(),
            span: None,
            tag: None,
            lineage: Vec::new(),
        },
    ]
}

/// Re-frames a (mutated) JSON body with a header whose checksum and length
/// are right, so that the JSON and semantic checks are exercised.
fn reframe(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "OUPS-OPDMD 2 {:08x} {}\n",
        crc32fast::hash(body),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn report(kind: &str, input: &[u8]) -> ! {
    panic!(
        "the {kind} reader panicked on input ({} bytes): {:?}",
        input.len(),
        String::from_utf8_lossy(input)
    );
}

#[test]
fn metadata_reader_never_panics() {
    let path = Path::new("fuzz_opdmd");
    let seeds: Vec<Vec<u8>> = metadata_docs().iter().map(|d| encode(d).unwrap()).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, n) = (0usize, iterations());
    for _ in 0..n {
        let seed = &seeds[rng.below(seeds.len())];
        let header_end = seed.iter().position(|&b| b == b'\n').unwrap() + 1;
        let input = if rng.below(10) < 8 {
            let mut body = seed[header_end..].to_vec();
            mutate(&mut rng, &mut body);
            reframe(&body)
        } else {
            let mut whole = seed.clone();
            mutate(&mut rng, &mut whole);
            whole
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            decode(&input, path).and_then(|doc| State::from_doc(doc, path).map(|_| ()))
        }));
        match outcome {
            Ok(result) => accepted += result.is_ok() as usize,
            Err(_) => report("metadata", &input),
        }
    }
    // Some mutations keep a valid document (a changed number, say).
    assert!(accepted > 0 && accepted < n, "{accepted} of {n} accepted");
}

fn state_file_seed(dir: &Path) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.5)])),
            Arc::new(StringArray::from(vec![Some("x"), None, Some("zz")])),
        ],
    )
    .unwrap();
    let path = dir.join("seed.state");
    let raw = [7u8; 40];
    save(
        &path,
        r#"{"format": 1, "state": {"k": {"tag": "raw", "section": 0}}}"#,
        &[
            SectionOut::Raw(&raw),
            SectionOut::Arrow {
                schema,
                batches: &[batch],
            },
        ],
    )
    .unwrap();
    std::fs::read(&path).unwrap()
}

#[test]
fn state_file_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let seed = state_file_seed(dir.path());
    let path = dir.path().join("fuzz.state");
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    // Each input goes through a file: fewer of them than for the metadata.
    let n = (iterations() / 4).max(1);
    let mut accepted = 0usize;
    for _ in 0..n {
        let mut input = seed.clone();
        mutate(&mut rng, &mut input);
        // Mostly keep the checksum right, so the layout and Arrow decoding
        // behind it are reached.
        let m = input.len();
        if m >= 24 && rng.below(10) < 8 {
            let crc = crc32fast::hash(&input[..m - 16]);
            input[m - 16..m - 12].copy_from_slice(&crc.to_le_bytes());
            input[m - 8..].copy_from_slice(b"OUPSEND!");
        }
        std::fs::write(&path, &input).unwrap();
        match catch_unwind(AssertUnwindSafe(|| load(&path).map(|_| ()))) {
            Ok(result) => accepted += result.is_ok() as usize,
            Err(_) => report("state file", &input),
        }
    }
    assert!(accepted < n, "every mutated state file was accepted");
}
