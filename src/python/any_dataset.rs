//! A native dataset as Python passes it: local or on object storage.

use pyo3::prelude::*;

use crate::python::dataset::RawDataset;
use crate::python::object_dataset::RawObjectDataset;
use crate::store::sources::Source;

/// `RawDataset` or `RawObjectDataset`, as an argument.
#[derive(FromPyObject)]
pub enum AnyDataset<'py> {
    Local(PyRef<'py, RawDataset>),
    Object(PyRef<'py, RawObjectDataset>),
}

/// What of an [`AnyDataset`] may cross to the thread without the GIL.
pub enum Native<'a> {
    Local(&'a RawDataset),
    Object(&'a RawObjectDataset),
}

impl AnyDataset<'_> {
    pub fn native(&self) -> Native<'_> {
        match self {
            AnyDataset::Local(raw) => Native::Local(raw),
            AnyDataset::Object(raw) => Native::Object(raw),
        }
    }
}

impl Native<'_> {
    /// The version it reads, for `Store.iter_intersections`.
    pub fn source(&self) -> crate::error::Result<Option<Source>> {
        Ok(match self {
            Native::Local(raw) => raw.snapshot()?.map(Source::Local),
            Native::Object(raw) => raw.snapshot()?.map(Source::Object),
        })
    }
}
