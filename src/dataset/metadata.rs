//! Version records: the `<name>_opdmd` file (the latest version, the commit
//! point) and the records of older versions in the history directory.
//!
//! Format: one header line `OUPS-OPDMD <format> <crc32 hex> <length>\n`
//! followed by `<length>` bytes of UTF-8 JSON. The checksum covers the JSON,
//! so a truncated, bit-flipped or foreign file is detected before it is
//! trusted. Nothing in it is executable (no pickle). Format 2 adds the
//! version's commit time and operation; format 1 (no history) is still read,
//! and upgraded by the first write.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dataset::layout::Layout;
use crate::error::{OupsError, Result};

const MAGIC: &str = "OUPS-OPDMD";
pub const FORMAT_VERSION: u32 = 2;
/// The first format, without history, which this release still reads.
pub const FORMAT_NO_HISTORY: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowGroupRecord {
    pub file_id: u64,
    pub n_rows: u64,
    pub min: Value,
    pub max: Value,
    /// The data file's key under the dataset's prefix, on object storage
    /// (where names carry the writer's tag); local files are named by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Which versions vacuums keep: the `keep_versions` most recent and those
/// superseded less than `keep_seconds` ago; neither means every version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RetentionDoc {
    pub keep_versions: Option<u64>,
    pub keep_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetadataDoc {
    /// The user's `ordered_on`: a column name, or a list for a column MultiIndex.
    pub ordered_on: Value,
    /// The Arrow field name of the ordered column, once data was written.
    pub ordered_field: Option<String>,
    /// The Arrow type of the ordered column (arrow-rs `DataType` display form).
    pub ordered_type: Option<String>,
    /// The version number, incremented at every commit (`generation` in format 1).
    #[serde(alias = "generation")]
    pub version: u64,
    /// Nanoseconds since the Unix epoch (UTC); absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<i64>,
    /// What made the version: `write`, `restore`, `remove_rows` ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// For a restore, the version it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
    /// Who committed it, when the writer says (a `StatefulLoop`'s id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
    /// The dataset's retention, when set (absent: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionDoc>,
    /// On object storage, the named pins (name -> version) that vacuums keep:
    /// carried from version to version like the retention, so every vacuum
    /// reads them in the record it plans from (see `object/pins.rs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<String, u64>,
    pub row_groups: Vec<RowGroupRecord>,
    pub key_value_metadata: Map<String, Value>,
    /// On object storage, the ordered range of the rows the write brought
    /// (`[min, max]`, as row-group bounds are written): a writer that lost
    /// the race for this version checks its own rows against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<[Value; 2]>,
    /// On object storage, a name no other commit has: a writer whose record
    /// was created finds out whether the history kept it by this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// On object storage, the tags of the versions before this one, the
    /// parent first (a bounded number of them; "" for a version without tag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<String>,
    /// The header's format number (not part of the JSON).
    #[serde(skip)]
    pub format: u32,
}

pub fn encode(doc: &MetadataDoc) -> Result<Vec<u8>> {
    encode_framed(MAGIC, FORMAT_VERSION, doc)
}

pub fn decode(bytes: &[u8], path: &Path) -> Result<MetadataDoc> {
    let (version, body) = decode_framed(bytes, MAGIC, path)?;
    let bad = |reason: &str| OupsError::corrupt(path, reason);
    if version != FORMAT_VERSION && version != FORMAT_NO_HISTORY {
        return Err(bad(&format!(
            "format version {version} is not supported by this oups (it reads versions \
             {FORMAT_NO_HISTORY} and {FORMAT_VERSION}); upgrade oups"
        )));
    }
    let mut doc: MetadataDoc =
        serde_json::from_slice(body).map_err(|e| bad(&format!("invalid metadata content: {e}")))?;
    doc.format = version;
    Ok(doc)
}

/// `<magic> <format> <crc32 hex> <length>\n` then the JSON of `value`: the
/// frame of every small file oups commits.
pub fn encode_framed(magic: &str, format: u32, value: &impl Serialize) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(value)
        .map_err(|e| OupsError::Internal(format!("cannot serialise {magic}: {e}")))?;
    let mut out = format!(
        "{magic} {format} {:08x} {}\n",
        crc32fast::hash(&body),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

/// The format number and the checked body of a framed file.
pub fn decode_framed<'a>(bytes: &'a [u8], magic: &str, path: &Path) -> Result<(u32, &'a [u8])> {
    let bad = |reason: &str| OupsError::corrupt(path, reason);
    let not_ours = || bad(&format!("no {magic} header (not an oups metadata file)"));
    let newline = bytes
        .iter()
        .take(128)
        .position(|&b| b == b'\n')
        .ok_or_else(not_ours)?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("unreadable header"))?;
    let parts: Vec<&str> = header.split(' ').collect();
    if parts.len() != 4 || parts[0] != magic {
        return Err(not_ours());
    }
    let version: u32 = parts[1]
        .parse()
        .map_err(|_| bad("unreadable format version"))?;
    // Only the spelling oups writes: a flipped bit that turns a digit into
    // another spelling of the same number must not go unnoticed.
    let canonical =
        |s: &str, digits: &[u8]| !s.is_empty() && s.bytes().all(|b| digits.contains(&b));
    if !canonical(parts[2], b"0123456789abcdef") || parts[2].len() != 8 {
        return Err(bad("unreadable checksum"));
    }
    if !canonical(parts[3], b"0123456789") || !canonical(parts[1], b"0123456789") {
        return Err(bad("unreadable length or format version"));
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
    Ok((version, body))
}

/// Reads the latest version record; `Ok(None)` when it does not exist.
pub fn read(layout: &Layout) -> Result<Option<MetadataDoc>> {
    read_record(&layout.meta)
}

/// Reads a version record; `Ok(None)` when it does not exist.
pub fn read_record(path: &Path) -> Result<Option<MetadataDoc>> {
    match fs::read(path) {
        Ok(bytes) => decode(&bytes, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(OupsError::corrupt(
            path,
            "a directory stands where a version record should be",
        )),
        Err(e) => Err(OupsError::io("cannot read metadata file", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> MetadataDoc {
        MetadataDoc {
            ordered_on: Value::from("ts"),
            ordered_field: Some("ts".into()),
            ordered_type: Some("Int64".into()),
            version: 3,
            committed_at: Some(1_700_000_000_000_000_000),
            operation: Some("write".into()),
            restored_from: None,
            writer: None,
            retention: None,
            pins: BTreeMap::new(),
            format: FORMAT_VERSION,
            row_groups: vec![RowGroupRecord {
                file_id: 0,
                n_rows: 2,
                min: Value::from(1),
                max: Value::from(2),
                file: None,
            }],
            key_value_metadata: Map::new(),
            span: None,
            tag: None,
            lineage: Vec::new(),
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

    #[test]
    fn reads_format_1() {
        let body = br#"{"ordered_on":"ts","ordered_field":"ts","ordered_type":"Int64","generation":4,"row_groups":[],"key_value_metadata":{}}"#;
        let mut bytes = format!(
            "OUPS-OPDMD 1 {:08x} {}\n",
            crc32fast::hash(body),
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        let doc = decode(&bytes, Path::new("x_opdmd")).unwrap();
        assert_eq!((doc.version, doc.format, doc.committed_at), (4, 1, None));
    }
}
