//! Python bindings of clawpatrol: the native module `clawpatrol._clawpatrol`.

use pyo3::prelude::*;

/// The native module; the pure-Python package `clawpatrol` wraps it.
#[pymodule]
fn _clawpatrol(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
