//! The compiled form of a `@toplevel` key class: how keys are spelled as
//! strings and paths, and parsed back.
//!
//! Parsing is strict so that discovery never invents keys: the exact number of
//! fields, ints in canonical spelling, every field validated. A key is only
//! accepted at construction if its string parses back to the same values.

use std::cmp::Ordering;

use crate::error::{OupsError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Int,
    Str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldValue {
    Int(i64),
    Str(String),
}

impl FieldValue {
    fn spelling(&self) -> String {
        match self {
            FieldValue::Int(v) => v.to_string(),
            FieldValue::Str(s) => s.clone(),
        }
    }
}

impl PartialOrd for FieldValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FieldValue {
    /// Matches Python's ordering of the same values: ints numerically, strings
    /// by code point (which UTF-8 byte order preserves).
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (FieldValue::Int(a), FieldValue::Int(b)) => a.cmp(b),
            (FieldValue::Str(a), FieldValue::Str(b)) => a.cmp(b),
            (FieldValue::Int(_), FieldValue::Str(_)) => Ordering::Less,
            (FieldValue::Str(_), FieldValue::Int(_)) => Ordering::Greater,
        }
    }
}

/// One directory level: the names and kinds of its own fields (a nested
/// level, if any, is the next entry of `KeySchema::levels`).
#[derive(Debug, Clone)]
pub struct Level {
    pub names: Vec<String>,
    pub kinds: Vec<FieldKind>,
}

#[derive(Debug, Clone)]
pub struct KeySchema {
    pub class_name: String,
    pub sep: String,
    pub levels: Vec<Level>,
}

/// Characters no str field may hold: path separators, the characters Windows
/// refuses in file names, and (checked apart) control characters. Anything else,
/// '.' included ("BRK.B"), is portable across Linux, macOS and Windows.
const FORBIDDEN: [char; 9] = ['/', '\\', ':', '*', '?', '"', '<', '>', '|'];
/// Endings of the files oups keeps beside a dataset directory: a directory
/// name ending so would collide with another key's metadata or lock file.
const RESERVED_SUFFIXES: [&str; 2] = ["_opdmd", ".lock"];
/// Device names Windows will not create as files, with or without extension.
const WINDOWS_DEVICES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// Why `s` cannot be a str field value, or None when it can.
fn value_problem(s: &str, sep: &str) -> Option<String> {
    if s.is_empty() {
        return Some(
            "is an empty string, which cannot be told apart in a directory name; use a \
             non-empty value"
                .into(),
        );
    }
    if s.contains(sep) {
        return Some(format!("contains the field separator {sep:?}"));
    }
    if let Some(c) = s.chars().find(|c| FORBIDDEN.contains(c) || c.is_control()) {
        return Some(format!(
            "contains the forbidden character {c:?}; str fields may not hold the field \
             separator {sep:?}, '/', '\\', ':', '*', '?', '\"', '<', '>', '|' or control \
             characters (NUL, tab, newline...)"
        ));
    }
    None
}

/// Why `part` cannot be a directory name of a key, or None when it can.
fn part_problem(part: &str) -> Option<String> {
    let lower = part.to_ascii_lowercase();
    if part.starts_with('.') {
        return Some("begins with '.' (hidden, and '.'/'..' are not names)".into());
    }
    if part.ends_with('.') || part.ends_with(' ') {
        return Some("ends with '.' or a space, which Windows drops from file names".into());
    }
    if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|x| lower.ends_with(*x)) {
        return Some(format!(
            "ends with {suffix:?}, which oups reserves for the files beside a dataset"
        ));
    }
    let stem = lower.split('.').next().unwrap_or("").to_ascii_uppercase();
    let device = WINDOWS_DEVICES.contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        return Some(format!("is the Windows device name {stem:?}"));
    }
    if part.len() > 200 {
        return Some(format!(
            "is {} bytes long; directory names are limited to 200 bytes",
            part.len()
        ));
    }
    None
}

impl KeySchema {
    pub fn new(class_name: String, sep: String, levels: Vec<Level>) -> Result<Self> {
        if sep.is_empty() {
            return Err(OupsError::InvalidArgument(format!(
                "'field_sep' of '{class_name}' must not be empty; use for instance '-' or '_'"
            )));
        }
        if sep.contains('/') || sep.contains('\\') || sep.contains('\0') {
            return Err(OupsError::InvalidArgument(format!(
                "'field_sep' {sep:?} of '{class_name}' must not contain '/', '\\' or NUL, \
                 which cannot appear in a directory name"
            )));
        }
        if levels.is_empty() || levels.iter().any(|l| l.kinds.is_empty()) {
            return Err(OupsError::InvalidType(format!(
                "every level of '{class_name}' needs at least one int or str field"
            )));
        }
        Ok(KeySchema {
            class_name,
            sep,
            levels,
        })
    }

    pub fn depth(&self) -> usize {
        self.levels.len()
    }

    pub fn n_fields(&self) -> usize {
        self.levels.iter().map(|l| l.kinds.len()).sum()
    }

    fn fields(&self) -> impl Iterator<Item = (&str, FieldKind)> {
        self.levels.iter().flat_map(|l| {
            l.names
                .iter()
                .map(String::as_str)
                .zip(l.kinds.iter().copied())
        })
    }

    /// One string per level: its field values joined with the separator.
    pub fn parts(&self, values: &[FieldValue]) -> Vec<String> {
        let mut out = Vec::with_capacity(self.levels.len());
        let mut it = values.iter();
        for level in &self.levels {
            let spelled: Vec<String> = it
                .by_ref()
                .take(level.kinds.len())
                .map(FieldValue::spelling)
                .collect();
            out.push(spelled.join(&self.sep));
        }
        out
    }

    pub fn to_str(&self, values: &[FieldValue]) -> String {
        self.parts(values).join(&self.sep)
    }

    /// Checks values coming from a Python instance; the message names the field.
    pub fn validate(&self, values: &[FieldValue]) -> Result<()> {
        if values.len() != self.n_fields() {
            return Err(OupsError::InvalidType(format!(
                "'{}' expects {} field values, got {}",
                self.class_name,
                self.n_fields(),
                values.len()
            )));
        }
        for ((name, kind), value) in self.fields().zip(values) {
            match (kind, value) {
                (FieldKind::Str, FieldValue::Str(s)) => self.check_str(name, s)?,
                (FieldKind::Int, FieldValue::Int(v)) => {
                    let spelled = v.to_string();
                    if spelled.contains(&self.sep) {
                        return Err(OupsError::InvalidArgument(format!(
                            "field '{name}' of '{}' is {v}, whose spelling contains the field \
                             separator {:?}; use another 'field_sep' for negative ints",
                            self.class_name, self.sep
                        )));
                    }
                }
                (expected, _) => {
                    return Err(OupsError::InvalidType(format!(
                        "field '{name}' of '{}' must be {}",
                        self.class_name,
                        if expected == FieldKind::Int {
                            "an int"
                        } else {
                            "a str"
                        }
                    )))
                }
            }
        }
        self.check_parts(values)?;
        // Separators made of several characters can still glue onto a value's
        // edge ("a-" + "--" + "1"); the round trip is the real criterion.
        if self.parse_str(&self.to_str(values)).as_deref() != Some(values) {
            return Err(OupsError::InvalidArgument(format!(
                "key {:?} of '{}' cannot be parsed back from its string; a field value probably \
                 begins or ends with part of the separator {:?}",
                self.to_str(values),
                self.class_name,
                self.sep
            )));
        }
        Ok(())
    }

    fn check_str(&self, name: &str, s: &str) -> Result<()> {
        match value_problem(s, &self.sep) {
            None => Ok(()),
            Some(why) => Err(OupsError::InvalidArgument(format!(
                "field '{name}' of '{}' is {s:?}, which {why}",
                self.class_name
            ))),
        }
    }

    /// Checks every level's directory name (the field values being valid).
    fn check_parts(&self, values: &[FieldValue]) -> Result<()> {
        for part in self.parts(values) {
            if let Some(why) = part_problem(&part) {
                return Err(OupsError::InvalidArgument(format!(
                    "key {:?} of '{}' cannot name a directory: its part {part:?} {why}",
                    self.to_str(values),
                    self.class_name
                )));
            }
        }
        Ok(())
    }

    /// The directory names of a key, after the checks of [`Self::validate`]:
    /// whatever a key class allowed, a store never builds a path from a key
    /// that could leave its directory or collide with another key's files.
    pub fn checked_parts(&self, values: &[FieldValue]) -> Result<Vec<String>> {
        self.validate(values)?;
        Ok(self.parts(values))
    }

    fn parse_field(&self, kind: FieldKind, text: &str) -> Option<FieldValue> {
        match kind {
            FieldKind::Str => {
                let ok = value_problem(text, &self.sep).is_none();
                ok.then(|| FieldValue::Str(text.to_string()))
            }
            FieldKind::Int => {
                let v: i64 = text.parse().ok()?;
                // Only the canonical spelling: no '+', leading zeros or '-0'.
                (v.to_string() == text).then_some(FieldValue::Int(v))
            }
        }
    }

    /// Whether `text` is the spelling of `level` (values pushed to `out`).
    pub fn level_matches(&self, level: &Level, text: &str, out: &mut Vec<FieldValue>) -> bool {
        self.parse_level(level, text, out).is_some()
    }

    fn parse_level(&self, level: &Level, text: &str, out: &mut Vec<FieldValue>) -> Option<()> {
        if part_problem(text).is_some() {
            return None;
        }
        let pieces: Vec<&str> = text.split(self.sep.as_str()).collect();
        if pieces.len() != level.kinds.len() {
            return None;
        }
        for (kind, piece) in level.kinds.iter().zip(pieces) {
            out.push(self.parse_field(*kind, piece)?);
        }
        Some(())
    }

    /// Parses `str(key)`; `None` unless it is exactly the spelling of a valid key.
    pub fn parse_str(&self, text: &str) -> Option<Vec<FieldValue>> {
        let pieces: Vec<&str> = text.split(self.sep.as_str()).collect();
        if pieces.len() != self.n_fields() {
            return None;
        }
        let mut out = Vec::with_capacity(pieces.len());
        for ((_, kind), piece) in self.fields().zip(pieces) {
            out.push(self.parse_field(kind, piece)?);
        }
        let parts_ok = self.parts(&out).iter().all(|p| part_problem(p).is_none());
        parts_ok.then_some(out)
    }

    /// Parses one directory part per level (the relative path of a dataset).
    pub fn parse_parts<S: AsRef<str>>(&self, parts: &[S]) -> Option<Vec<FieldValue>> {
        if parts.len() != self.levels.len() {
            return None;
        }
        let mut out = Vec::with_capacity(self.n_fields());
        for (level, part) in self.levels.iter().zip(parts) {
            self.parse_level(level, part.as_ref(), &mut out)?;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(sep: &str) -> KeySchema {
        KeySchema::new(
            "Pair".into(),
            sep.into(),
            vec![Level {
                names: vec!["a".into(), "b".into()],
                kinds: vec![FieldKind::Str, FieldKind::Int],
            }],
        )
        .unwrap()
    }

    fn s(v: &str) -> FieldValue {
        FieldValue::Str(v.into())
    }

    #[test]
    fn strict_parsing() {
        let k = pair("-");
        assert_eq!(k.parse_str("x-3"), Some(vec![s("x"), FieldValue::Int(3)]));
        for bad in [
            "3", "", "x-y", "w-x-3", "x-01", "x-+1", "x- 1", "x-1_000", "x/y-1", "-2", ".x-1",
        ] {
            assert_eq!(k.parse_str(bad), None, "{bad}");
        }
        let u = pair("_");
        assert_eq!(u.parse_str("x_-1"), Some(vec![s("x"), FieldValue::Int(-1)]));
        assert_eq!(u.parse_str("x_-0"), None);
        assert_eq!(
            k.parse_str("BRK.B-1"),
            Some(vec![s("BRK.B"), FieldValue::Int(1)])
        );
    }

    #[test]
    fn paths_never_leave_or_collide() {
        let k = pair("-");
        let one = KeySchema::new(
            "One".into(),
            "-".into(),
            vec![Level {
                names: vec!["a".into()],
                kinds: vec![FieldKind::Str],
            }],
        )
        .unwrap();
        for bad in [
            "..", ".", "../x", "/abs", "a\\b", "x\0", "x\n", "x_opdmd", "x_OPDMD", "x.lock", "nul",
            "COM1.txt", "x.", "x ", ".hidden",
        ] {
            assert!(one.checked_parts(&[s(bad)]).is_err(), "{bad:?}");
            assert_eq!(one.parse_parts(&[bad]), None, "{bad:?}");
        }
        assert_eq!(one.checked_parts(&[s("BRK.B")]).unwrap(), ["BRK.B"]);
        assert!(k.checked_parts(&[s("x.lock"), FieldValue::Int(1)]).is_ok());
    }

    #[test]
    fn validation_rejects_what_cannot_round_trip() {
        let k = pair("-");
        assert!(k.validate(&[s("x"), FieldValue::Int(3)]).is_ok());
        assert!(k.validate(&[s(""), FieldValue::Int(3)]).is_err());
        assert!(k.validate(&[s("a-b"), FieldValue::Int(3)]).is_err());
        assert!(k.validate(&[s("x"), FieldValue::Int(-1)]).is_err());
        let long = pair("--");
        assert!(long.validate(&[s("a-"), FieldValue::Int(1)]).is_err());
        assert!(long.validate(&[s("a-b"), FieldValue::Int(1)]).is_ok());
    }

    #[test]
    fn ordering_matches_python() {
        let mut v = [s("b"), s("a"), s("B"), s("é")];
        v.sort();
        assert_eq!(v, [s("B"), s("a"), s("b"), s("é")]);
    }
}
