//! The PyO3 module `oups._oups`: one file per native class.

mod any_dataset;
mod asof;
mod convert;
mod dataset;
mod errors;
mod handover;
mod intersections;
mod key_schema;
mod object_dataset;
mod rolling;
mod segment_state;
mod segments;
mod snapshots;
mod staged;
mod stateful_loop;

use pyo3::prelude::*;

/// Triggers a Rust panic inside the engine wrapper; used by the test suite to
/// check that panics surface as `oups.exceptions.InternalError`.
#[pyfunction]
fn _debug_panic(py: Python<'_>) -> PyResult<()> {
    errors::run(py, || -> crate::error::Result<()> {
        panic!("deliberate test panic")
    })
}

#[pymodule]
fn _oups(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEBUG_BUILD", cfg!(debug_assertions))?;
    m.add("FAILPOINTS", crate::failpoint::ENABLED)?;
    m.add_class::<dataset::RawDataset>()?;
    m.add_class::<dataset::RawInfo>()?;
    m.add_class::<object_dataset::RawObjectDataset>()?;
    m.add_class::<key_schema::RawKeySchema>()?;
    m.add_class::<intersections::RawIntersections>()?;
    m.add_function(wrap_pyfunction!(stateful_loop::save_state, m)?)?;
    m.add_function(wrap_pyfunction!(stateful_loop::load_state, m)?)?;
    m.add_class::<stateful_loop::RawStateObject>()?;
    m.add_function(wrap_pyfunction!(asof::asof_merge, m)?)?;
    m.add_function(wrap_pyfunction!(segments::segment_aggregate, m)?)?;
    m.add_function(wrap_pyfunction!(rolling::segment_roll, m)?)?;
    m.add_function(wrap_pyfunction!(rolling::segment_join, m)?)?;
    m.add_class::<segment_state::SegmentState>()?;
    m.add_function(wrap_pyfunction!(_debug_panic, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::metadata_path, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::find_datasets, m)?)?;
    m.add_function(wrap_pyfunction!(object_dataset::find_datasets_url, m)?)?;
    m.add_function(wrap_pyfunction!(object_dataset::_forget_objects, m)?)?;
    m.add_function(wrap_pyfunction!(staged::staged_begin, m)?)?;
    m.add_function(wrap_pyfunction!(staged::staged_plan, m)?)?;
    m.add_function(wrap_pyfunction!(staged::staged_write, m)?)?;
    m.add_function(wrap_pyfunction!(staged::staged_discard, m)?)?;
    m.add_function(wrap_pyfunction!(staged::staged_commit, m)?)?;
    m.add_function(wrap_pyfunction!(snapshots::create_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(snapshots::read_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(snapshots::list_snapshots, m)?)?;
    m.add_function(wrap_pyfunction!(snapshots::delete_snapshot, m)?)?;
    m.add_function(wrap_pyfunction!(errors::_check_exception_classes, m)?)?;
    Ok(())
}
