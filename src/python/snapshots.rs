//! Store snapshots for the Python `Store`.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::python::errors::run;
use crate::store::snapshots;

/// Pins every dataset of `datasets` and commits snapshot `name` of the
/// store at `base`; returns `[(relative path, version)]`.
#[pyfunction]
pub fn create_snapshot(
    py: Python<'_>,
    base: PathBuf,
    name: String,
    datasets: Vec<PathBuf>,
) -> PyResult<Vec<(String, u64)>> {
    let snap = run(py, || snapshots::create(&base, &name, &datasets))?;
    Ok(entries(snap))
}

/// `(created_at ns, [(relative path, version)])` of snapshot `name`.
#[pyfunction]
pub fn read_snapshot(
    py: Python<'_>,
    base: PathBuf,
    name: String,
) -> PyResult<(i64, Vec<(String, u64)>)> {
    let snap = run(py, || snapshots::read(&base, &name))?;
    Ok((snap.created_at, entries(snap)))
}

#[pyfunction]
pub fn list_snapshots(py: Python<'_>, base: PathBuf) -> Vec<String> {
    py.detach(|| snapshots::list(&base))
}

/// Removes snapshot `name` and its pins in `datasets`; false if it did not exist.
#[pyfunction]
pub fn delete_snapshot(
    py: Python<'_>,
    base: PathBuf,
    name: String,
    datasets: Vec<PathBuf>,
) -> PyResult<bool> {
    run(py, || snapshots::delete(&base, &name, &datasets))
}

fn entries(snap: snapshots::StoreSnapshot) -> Vec<(String, u64)> {
    snap.datasets
        .into_iter()
        .map(|e| (e.path, e.version))
        .collect()
}
