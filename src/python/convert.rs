//! Python values turned into the engine's typed parameters, one newtype per
//! kind of parameter; the engine checks them and owns the messages.

use pyo3::prelude::*;

use crate::dataset::bounds::PhysicalBound;

/// A range bound Python already converted into the ordered column's physical
/// value: an int for integer and temporal columns, a float for float ones.
#[derive(Clone, Copy, FromPyObject)]
pub enum PyBound {
    Int(i128),
    Float(f64),
}

impl From<PyBound> for PhysicalBound {
    fn from(b: PyBound) -> Self {
        match b {
            PyBound::Int(v) => PhysicalBound::Int(v),
            PyBound::Float(v) => PhysicalBound::Float(v),
        }
    }
}
