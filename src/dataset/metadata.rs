//! The `<name>_opdmd` metadata file: the dataset's commit point.
//!
//! Format (version 1): one header line `OUPS-OPDMD 1 <crc32 hex> <length>\n`
//! followed by `<length>` bytes of UTF-8 JSON. The checksum covers the JSON,
//! so a truncated, bit-flipped or foreign file is detected before it is
//! trusted. Nothing in it is executable (no pickle). It is replaced atomically:
//! written to a temp file, fsynced, renamed over the old one, parent fsynced.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dataset::layout::Layout;
use crate::error::{IoContext, OupsError, Result};

const MAGIC: &str = "OUPS-OPDMD";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowGroupRecord {
    pub file_id: u64,
    pub n_rows: u64,
    pub min: Value,
    pub max: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetadataDoc {
    /// The user's `ordered_on`: a column name, or a list for a column MultiIndex.
    pub ordered_on: Value,
    /// The Arrow field name of the ordered column, once data was written.
    pub ordered_field: Option<String>,
    /// The Arrow type of the ordered column (arrow-rs `DataType` display form).
    pub ordered_type: Option<String>,
    /// Incremented at every commit.
    pub generation: u64,
    pub row_groups: Vec<RowGroupRecord>,
    pub key_value_metadata: Map<String, Value>,
}

pub fn encode(doc: &MetadataDoc) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(doc)
        .map_err(|e| OupsError::Internal(format!("cannot serialise metadata: {e}")))?;
    let mut out = format!(
        "{MAGIC} {FORMAT_VERSION} {:08x} {}\n",
        crc32fast::hash(&body),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn decode(bytes: &[u8], path: &Path) -> Result<MetadataDoc> {
    let bad = |reason: &str| OupsError::corrupt(path, reason);
    let newline = bytes
        .iter()
        .take(128)
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no oups metadata header (not an oups metadata file)"))?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("unreadable header"))?;
    let parts: Vec<&str> = header.split(' ').collect();
    if parts.len() != 4 || parts[0] != MAGIC {
        return Err(bad("no oups metadata header (not an oups metadata file)"));
    }
    let version: u32 = parts[1]
        .parse()
        .map_err(|_| bad("unreadable format version"))?;
    if version != FORMAT_VERSION {
        return Err(bad(&format!(
            "format version {version} is not supported by this oups (it reads version \
             {FORMAT_VERSION}); upgrade oups"
        )));
    }
    let crc = u32::from_str_radix(parts[2], 16).map_err(|_| bad("unreadable checksum"))?;
    let len: usize = parts[3].parse().map_err(|_| bad("unreadable length"))?;
    let body = &bytes[newline + 1..];
    if body.len() != len {
        return Err(bad(&format!(
            "expected {len} bytes of metadata, found {} (truncated or appended to)",
            body.len()
        )));
    }
    if crc32fast::hash(body) != crc {
        return Err(bad("checksum mismatch (the file was modified or damaged)"));
    }
    serde_json::from_slice(body).map_err(|e| bad(&format!("invalid metadata content: {e}")))
}

/// Reads the metadata file; `Ok(None)` when it does not exist.
pub fn read(layout: &Layout) -> Result<Option<MetadataDoc>> {
    match fs::read(&layout.meta) {
        Ok(bytes) => decode(&bytes, &layout.meta).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(OupsError::corrupt(
            &layout.meta,
            "a directory stands where the metadata file should be",
        )),
        Err(e) => Err(OupsError::io("cannot read metadata file", &layout.meta, e)),
    }
}

/// Atomically replaces the metadata file. This is the commit point of a write.
pub fn write_atomic(layout: &Layout, doc: &MetadataDoc) -> Result<()> {
    let bytes = encode(doc)?;
    let tmp = layout.meta_tmp();
    crate::durable::replace_atomic(
        &layout.meta,
        &tmp,
        "cannot commit metadata file",
        "before_commit_rename",
        |mut f| {
            f.write_all(&bytes)
                .at("cannot write metadata temp file", &tmp)?;
            Ok(f)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> MetadataDoc {
        MetadataDoc {
            ordered_on: Value::from("ts"),
            ordered_field: Some("ts".into()),
            ordered_type: Some("Int64".into()),
            generation: 3,
            row_groups: vec![RowGroupRecord {
                file_id: 0,
                n_rows: 2,
                min: Value::from(1),
                max: Value::from(2),
            }],
            key_value_metadata: Map::new(),
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let p = Path::new("x_opdmd");
        let bytes = encode(&doc()).unwrap();
        assert_eq!(decode(&bytes, p).unwrap(), doc());
        assert!(decode(&bytes[..bytes.len() - 1], p).is_err());
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x10;
        assert!(decode(&flipped, p).is_err());
        assert!(decode(b"PAR1 garbage", p).is_err());
        assert!(decode(b"", p).is_err());
    }
}
