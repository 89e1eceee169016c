//! The StatefulLoop persistence file: a versioned, checksummed container that
//! holds a JSON manifest (written by the Python layer) and binary sections
//! (raw bytes, or Arrow IPC streams for tables), replaced atomically.
//!
//! Layout (all integers little-endian, every section starts 64-byte aligned so
//! that Arrow buffers decode without copies):
//!
//! ```text
//! 0    magic "OUPSLOOP" | format version u32 | reserved u32 | manifest len u64 | reserved
//! 64   manifest (UTF-8 JSON), padded to 64
//!      section 0 data, padded to 64 ... section n-1 data, padded to 64
//!      section table: count u64, then per section kind u32 | reserved u32 | offset u64 | len u64
//!      trailer: table offset u64 | crc32 u32 | reserved u32 | end magic "OUPSEND!"
//! ```
//!
//! The CRC-32 covers every byte before the crc field, so truncation, bit rot
//! and foreign files are all told apart from a valid file before anything is
//! decoded (the Python layer unpickles only after this check).

use std::fs;
#[cfg(not(unix))]
use std::io::Read;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;

use crate::error::{IoContext, OupsError, Result};

const MAGIC: &[u8; 8] = b"OUPSLOOP";
const END_MAGIC: &[u8; 8] = b"OUPSEND!";
/// Bumped on any incompatible change of the container layout.
pub const FORMAT_VERSION: u32 = 1;
const ALIGN: u64 = 64;
const HEADER_LEN: u64 = 64;
const TRAILER_LEN: u64 = 24;
const KIND_RAW: u32 = 1;
const KIND_ARROW: u32 = 2;

/// A section handed to [`save`].
pub enum SectionOut<'a> {
    Raw(&'a [u8]),
    Arrow {
        schema: SchemaRef,
        batches: &'a [RecordBatch],
    },
}

/// A section returned by [`load`]; buffers are slices of the file image.
pub enum SectionIn {
    Raw(Buffer),
    Arrow {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
}

pub struct StateFile {
    pub manifest: String,
    pub sections: Vec<SectionIn>,
}

/// Counts and checksums everything written through it.
struct HashingWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
    pos: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> HashingWriter<W> {
    fn pad(&mut self) -> std::io::Result<()> {
        let rem = self.pos % ALIGN;
        if rem != 0 {
            self.write_all(&[0u8; ALIGN as usize][..(ALIGN - rem) as usize])?;
        }
        Ok(())
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_body<W: Write>(
    w: &mut HashingWriter<W>,
    manifest: &str,
    sections: &[SectionOut],
    tmp: &Path,
) -> Result<()> {
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&(manifest.len() as u64).to_le_bytes());
    let io = |e: std::io::Error| OupsError::io("cannot write state file", tmp, e);
    w.write_all(&header).map_err(io)?;
    w.write_all(manifest.as_bytes()).map_err(io)?;
    w.pad().map_err(io)?;
    let mut table = Vec::with_capacity(sections.len());
    for section in sections {
        let offset = w.pos;
        let kind = match section {
            SectionOut::Raw(bytes) => {
                w.write_all(bytes).map_err(io)?;
                KIND_RAW
            }
            SectionOut::Arrow { schema, batches } => {
                let mut writer = StreamWriter::try_new(&mut *w, schema)?;
                for batch in batches.iter() {
                    writer.write(batch)?;
                }
                writer.finish()?;
                KIND_ARROW
            }
        };
        table.push((kind, offset, w.pos - offset));
        w.pad().map_err(io)?;
    }
    let table_offset = w.pos;
    let mut raw = Vec::with_capacity(8 + 24 * table.len() + 16);
    raw.extend_from_slice(&(table.len() as u64).to_le_bytes());
    for (kind, offset, len) in &table {
        raw.extend_from_slice(&kind.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&offset.to_le_bytes());
        raw.extend_from_slice(&len.to_le_bytes());
    }
    raw.extend_from_slice(&table_offset.to_le_bytes());
    w.write_all(&raw).map_err(io)?;
    let crc = w.crc.clone().finalize();
    let mut tail = [0u8; 16];
    tail[..4].copy_from_slice(&crc.to_le_bytes());
    tail[8..].copy_from_slice(END_MAGIC);
    w.write_all(&tail).map_err(io)?;
    Ok(())
}

/// Writes the state file atomically: a temporary file in the same directory,
/// fsync, rename over `path`, fsync of the directory. On any failure the
/// previous file is left untouched and the temporary file is removed.
pub fn save(path: &Path, manifest: &str, sections: &[SectionOut]) -> Result<()> {
    let tmp = temp_path(path);
    crate::durable::replace_atomic(
        path,
        &tmp,
        "cannot replace state file",
        "state_file_before_rename",
        |file| {
            let mut w = HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                crc: crc32fast::Hasher::new(),
                pos: 0,
            };
            write_body(&mut w, manifest, sections, &tmp)?;
            crate::failpoint::hit("state_file_written");
            w.inner
                .into_inner()
                .map_err(|e| OupsError::io("cannot write state file", &tmp, e.into_error()))
        },
    )
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// The file's bytes as an Arrow buffer, so that sections decode without copies.
///
/// On unix the file is memory-mapped: the state is then copied once, from the
/// page cache into the caller's arrays, instead of twice. A state file is only
/// ever replaced by rename, never rewritten in place, so the mapping stays
/// valid for as long as anything refers to it. Elsewhere a rename over a
/// mapped file fails, so the file is read into an aligned buffer.
fn read_image(path: &Path) -> Result<Buffer> {
    let file = fs::File::open(path).at("cannot open state file", path)?;
    let len = file.metadata().at("cannot stat state file", path)?.len() as usize;
    if len == 0 {
        return Ok(Buffer::from(MutableBuffer::new(0)));
    }
    #[cfg(unix)]
    {
        // SAFETY: the mapping is read-only and owned by the buffer; see above
        // for why the file does not change underneath it.
        let map = unsafe { memmap2::Mmap::map(&file) }.at("cannot map state file", path)?;
        let ptr = std::ptr::NonNull::new(map.as_ptr() as *mut u8).expect("mmap is non-null");
        // SAFETY: `ptr` is valid for `len` bytes while `map` lives, and the
        // buffer keeps `map` alive.
        Ok(unsafe { Buffer::from_custom_allocation(ptr, map.len(), std::sync::Arc::new(map)) })
    }
    #[cfg(not(unix))]
    {
        let mut file = file;
        // A zeroed allocation of this size comes from fresh pages, so zeroing is free.
        let mut image = MutableBuffer::from_len_zeroed(len);
        file.read_exact(image.as_slice_mut())
            .at("cannot read state file", path)?;
        Ok(image.into())
    }
}

/// Loads and verifies a state file. Every structural problem is a
/// [`OupsError::CorruptState`] naming the path.
pub fn load(path: &Path) -> Result<StateFile> {
    parse(read_image(path)?, path)
}

/// The bytes [`save`] writes, in memory (for object storage, where one put
/// replaces the whole object).
pub fn encode(manifest: &str, sections: &[SectionOut], name: &Path) -> Result<Vec<u8>> {
    let mut w = HashingWriter {
        inner: Vec::new(),
        crc: crc32fast::Hasher::new(),
        pos: 0,
    };
    write_body(&mut w, manifest, sections, name)?;
    Ok(w.inner)
}

/// Verifies and splits a state file's image; `path` names it in errors.
pub fn parse(image: Buffer, path: &Path) -> Result<StateFile> {
    let bytes = image.as_slice();
    let bad = |reason: &str| OupsError::corrupt_state(path, reason);
    if bytes.len() < MAGIC.len() || &bytes[..8] != MAGIC {
        return Err(bad(if bytes.is_empty() {
            "the file is empty"
        } else {
            "not an oups StatefulLoop state file (wrong magic bytes); it may come from another program or from the pure-Python oups"
        }));
    }
    if bytes.len() < (HEADER_LEN + TRAILER_LEN) as usize {
        return Err(bad("the file is truncated"));
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(OupsError::corrupt_state(
            path,
            format!("unsupported format version {version} (this oups reads version {FORMAT_VERSION}); it was written by a different oups release"),
        ));
    }
    let n = bytes.len();
    if &bytes[n - 8..] != END_MAGIC {
        return Err(bad("the file is truncated (end marker missing)"));
    }
    let stored_crc = u32_at(bytes, n - 16);
    if crc32fast::hash(&bytes[..n - 16]) != stored_crc {
        return Err(bad("checksum mismatch: the file is damaged"));
    }
    let manifest_len = u64_at(bytes, 16) as usize;
    let table_offset = u64_at(bytes, n - 24) as usize;
    let table_end = n - TRAILER_LEN as usize;
    // Offsets come from the file: checked arithmetic, so that a forged file
    // (with a valid checksum) gives an error, not an overflow.
    let manifest_end = (HEADER_LEN as usize).checked_add(manifest_len);
    if manifest_end.is_none_or(|end| end > table_offset)
        || table_offset
            .checked_add(8)
            .is_none_or(|end| end > table_end)
    {
        return Err(bad("inconsistent section layout"));
    }
    let manifest =
        std::str::from_utf8(&bytes[HEADER_LEN as usize..HEADER_LEN as usize + manifest_len])
            .map_err(|_| bad("the manifest is not UTF-8"))?
            .to_string();
    let count = u64_at(bytes, table_offset) as usize;
    if count
        .checked_mul(24)
        .and_then(|len| len.checked_add(table_offset + 8))
        != Some(table_end)
    {
        return Err(bad("inconsistent section table"));
    }
    let mut sections = Vec::with_capacity(count);
    for i in 0..count {
        let at = table_offset + 8 + 24 * i;
        let kind = u32_at(bytes, at);
        let offset = u64_at(bytes, at + 8) as usize;
        let len = u64_at(bytes, at + 16) as usize;
        if offset.checked_add(len).is_none_or(|end| end > table_offset) {
            return Err(bad("a section lies outside the file"));
        }
        let data = image.slice_with_length(offset, len);
        sections.push(match kind {
            KIND_RAW => SectionIn::Raw(data),
            KIND_ARROW => decode_arrow(data).map_err(|e| {
                OupsError::corrupt_state(
                    path,
                    format!("section {i} is not a valid Arrow stream: {e}"),
                )
            })?,
            other => {
                return Err(OupsError::corrupt_state(
                    path,
                    format!("unknown section kind {other}"),
                ))
            }
        });
    }
    Ok(StateFile { manifest, sections })
}

/// Decodes an Arrow IPC stream section. The checksum only proves the bytes
/// are those written; a forged file can still hold a malformed stream, and
/// the IPC reader may panic on some of those, so a panic is an error here.
fn decode_arrow(data: Buffer) -> std::result::Result<SectionIn, arrow_schema::ArrowError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_stream(data))).unwrap_or_else(
        |_| {
            Err(arrow_schema::ArrowError::IpcError(
                "malformed Arrow stream".into(),
            ))
        },
    )
}

fn decode_stream(mut data: Buffer) -> std::result::Result<SectionIn, arrow_schema::ArrowError> {
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while let Some(batch) = decoder.decode(&mut data)? {
        batches.push(batch);
    }
    decoder.finish()?;
    let schema = decoder
        .schema()
        .ok_or_else(|| arrow_schema::ArrowError::IpcError("stream without a schema".into()))?;
    Ok(SectionIn::Arrow { schema, batches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn table() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.5)])),
            ],
        )
        .unwrap();
        (schema, vec![batch])
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.bin");
        let (schema, batches) = table();
        let raw = b"hello raw bytes".to_vec();
        save(
            &path,
            "{\"k\": 1}",
            &[
                SectionOut::Raw(&raw),
                SectionOut::Arrow {
                    schema: schema.clone(),
                    batches: &batches,
                },
                SectionOut::Raw(&[]),
            ],
        )
        .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.manifest, "{\"k\": 1}");
        assert_eq!(loaded.sections.len(), 3);
        match &loaded.sections[0] {
            SectionIn::Raw(b) => assert_eq!(b.as_slice(), raw.as_slice()),
            _ => panic!("raw expected"),
        }
        match &loaded.sections[1] {
            SectionIn::Arrow {
                schema: s,
                batches: b,
            } => {
                assert_eq!(s, &schema);
                assert_eq!(b, &batches);
                // Sections are aligned, so decoding borrowed the file image.
                assert_eq!(
                    b[0].column(0).to_data().buffers()[0].as_ptr() as usize % 8,
                    0
                );
            }
            _ => panic!("arrow expected"),
        }
        match &loaded.sections[2] {
            SectionIn::Raw(b) => assert!(b.is_empty()),
            _ => panic!("raw expected"),
        }
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.bin");
        save(&path, "{}", &[SectionOut::Raw(&[7u8; 300])]).unwrap();
        let good = fs::read(&path).unwrap();
        let reason = |bytes: &[u8]| {
            fs::write(&path, bytes).unwrap();
            match load(&path) {
                Err(OupsError::CorruptState { reason, .. }) => reason,
                Err(other) => panic!("unexpected error {other}"),
                Ok(_) => panic!("damaged file accepted"),
            }
        };
        assert!(reason(&[]).contains("empty"));
        assert!(reason(&good[..good.len() - 5]).contains("truncated"));
        assert!(reason(&good[..100]).contains("truncated"));
        let mut flipped = good.clone();
        flipped[200] ^= 1;
        assert!(reason(&flipped).contains("checksum"));
        assert!(reason(b"\x80\x05\x95 pickle data here").contains("magic"));
        let mut newer = good.clone();
        newer[8] = 9;
        assert!(reason(&newer).contains("version 9"));
    }

    #[test]
    fn failed_save_keeps_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("state.bin");
        assert!(matches!(save(&path, "{}", &[]), Err(OupsError::Io { .. })));
        let path = dir.path().join("state.bin");
        save(&path, "{\"v\": 1}", &[]).unwrap();
        fs::create_dir(
            dir.path()
                .join(".state.bin.tmp-".to_string() + &std::process::id().to_string()),
        )
        .unwrap();
        assert!(save(&path, "{\"v\": 2}", &[]).is_err());
        assert_eq!(load(&path).unwrap().manifest, "{\"v\": 1}");
    }
}
