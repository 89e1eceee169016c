//! A StatefulLoop state file at an object-storage URL.
//!
//! A put replaces a whole object at once, so a reader never sees half a
//! file, as the rename gives on local disk. What a put alone does not give is
//! protection from a second loop saving to the same URL: each save is
//! therefore conditional on the entity tag the loop last read or wrote (or
//! on there being no object, before the first save), and a loop whose state
//! was replaced by another process gets a conflict error instead of
//! overwriting it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow_buffer::Buffer;
use bytes::Bytes;

use crate::error::{OupsError, Result};
use crate::stateful_loop::state_file::{self, SectionOut, StateFile};
use crate::storage::{Created, Location, ObjectStorage};

/// What a save expects to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No object: the loop found none when it started.
    Absent,
    /// The object with this entity tag.
    Tag(String),
    /// Anything: the store gave no entity tag to check against.
    Any,
}

pub struct StateObject {
    storage: ObjectStorage,
    key: String,
}

impl StateObject {
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let (parent, key) = Location::parse(url)?.split_name()?;
        Ok(StateObject {
            storage: ObjectStorage::open(parent, options)?,
            key,
        })
    }

    fn url(&self) -> String {
        self.storage.url(&self.key)
    }

    /// The state and what the next save must replace; `None` when there
    /// is no state file yet.
    pub fn load(&self) -> Result<Option<(StateFile, Expect)>> {
        let Some((bytes, tag)) = self.storage.get(&self.key)? else {
            return Ok(None);
        };
        let state = state_file::parse(Buffer::from(bytes), &PathBuf::from(self.url()))?;
        Ok(Some((state, tag.map_or(Expect::Any, Expect::Tag))))
    }

    /// Replaces the state if it is still what `expect` says; returns what
    /// the next save must replace.
    pub fn save(&self, manifest: &str, sections: &[SectionOut], expect: &Expect) -> Result<Expect> {
        let url = self.url();
        let bytes = Bytes::from(state_file::encode(
            manifest,
            sections,
            &PathBuf::from(&url),
        )?);
        let replaced = match expect {
            Expect::Absent => match self.storage.create(&self.key, bytes)? {
                Created::New(tag) => Some(tag),
                Created::Exists => None,
            },
            Expect::Tag(tag) => self.storage.replace(&self.key, bytes, tag)?,
            Expect::Any => {
                self.storage.put(&self.key, bytes)?;
                Some(None)
            }
        };
        match replaced {
            Some(tag) => Ok(tag.map_or(Expect::Any, Expect::Tag)),
            None => Err(OupsError::CommitConflict(format!(
                "the state file '{url}' was written by another process since this loop \
                 loaded it; nothing was saved. Two loops must not share a state file: give \
                 each its own URL"
            ))),
        }
    }
}
