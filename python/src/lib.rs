//! `runnel._runnel`: the native part of the `runnel` Python package — the converter, and models
//! and sessions of the runtime, with numpy arrays in and out. Every runtime or converter error
//! becomes a `runnel.RunnelError` carrying the runtime's message.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use runnel::{InputKind, Model, Session};
use runnel_converter::io::convert_file;
use runnel_converter::stream::{run_session, Inputs};
use runnel_converter::{parse_dtype, AlignedBytes, ConvertOptions};

create_exception!(
    runnel,
    RunnelError,
    PyException,
    "An error of the runnel runtime or converter."
);

fn err(e: impl std::fmt::Display) -> PyErr {
    RunnelError::new_err(e.to_string())
}

/// A validated model and the blob it borrows. The model is built once (validation reads the whole
/// blob: the CRC alone costs more than a step), so it must live beside its bytes.
struct Loaded {
    // Declared first, so dropped before the bytes it borrows.
    model: Model<'static>,
    _blob: Box<AlignedBytes>,
}

impl Loaded {
    fn new(bytes: &[u8]) -> PyResult<Loaded> {
        let blob = Box::new(AlignedBytes::new(bytes));
        // SAFETY: `blob` is boxed, so its storage stays at one address until `Loaded` is dropped,
        // and it is never mutated; `model` is dropped before it (field order), so the 'static
        // borrow never outlives the bytes and is never handed out beyond `&self`'s lifetime.
        let view: &'static [u8] =
            unsafe { std::mem::transmute::<&[u8], &'static [u8]>(blob.as_bytes()) };
        let model = Model::from_bytes(view).map_err(err)?;
        Ok(Loaded { model, _blob: blob })
    }

    fn model(&self) -> &Model<'_> {
        &self.model
    }
}

/// A model loaded from a `.rnl` blob (`Model.load(path_or_bytes)`).
#[pyclass(name = "Model", module = "runnel", frozen)]
struct PyModel {
    inner: Arc<Loaded>,
}

#[pymethods]
impl PyModel {
    /// Loads and validates a blob from a path or from bytes.
    #[staticmethod]
    fn load(src: &Bound<'_, PyAny>) -> PyResult<PyModel> {
        let bytes: Vec<u8> = if let Ok(b) = src.cast::<PyBytes>() {
            b.as_bytes().to_vec()
        } else {
            let path: PathBuf = src.extract()?;
            std::fs::read(&path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?
        };
        Ok(PyModel {
            inner: Arc::new(Loaded::new(&bytes)?),
        })
    }

    /// What the model is: input kind, sizes, blocks, storage types, flash and RAM bytes.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.model();
        let d = PyDict::new(py);
        match m.input_kind() {
            InputKind::Tokens { vocab } => {
                d.set_item("input", "tokens")?;
                d.set_item("vocab", vocab)?;
            }
            InputKind::Frames { dim } => {
                d.set_item("input", "frames")?;
                d.set_item("frame_dim", dim)?;
            }
        }
        d.set_item("d_model", m.d_model())?;
        d.set_item("output_dim", m.output_dim())?;
        let blocks: Vec<String> = m.blocks().map(|b| b.to_string()).collect();
        d.set_item("blocks", PyList::new(py, blocks)?)?;
        d.set_item("final_norm", m.has_final_norm())?;
        d.set_item("weights", m.weight_type().name())?;
        d.set_item("kv", m.kv_type().name())?;
        d.set_item("integer", m.is_integer())?;
        d.set_item("params", m.param_count())?;
        d.set_item("flash_bytes", m.blob_bytes())?;
        d.set_item("state_bytes", m.state_bytes())?;
        d.set_item("snapshot_bytes", m.snapshot_bytes())?;
        Ok(d)
    }

    /// A new session (stream) over this model, from zero state.
    fn session(&self) -> PyResult<PySession> {
        PySession::new(self.inner.clone())
    }

    fn __repr__(&self) -> String {
        let m = self.inner.model();
        format!(
            "runnel.Model({} weights, {} KV, {} params, {} flash bytes, {} state bytes)",
            m.weight_type().name(),
            m.kv_type().name(),
            m.param_count(),
            m.blob_bytes(),
            m.state_bytes()
        )
    }
}

/// A running stream: the runtime's `Session` over an arena this object owns.
struct Stream {
    // Declared first, so dropped before the arena and the model it borrows.
    session: Session<'static, 'static>,
    _arena: Box<[u32]>,
    model: Arc<Loaded>,
}

impl Stream {
    fn new(model: Arc<Loaded>) -> PyResult<Stream> {
        let words = model.model().state_bytes().div_ceil(4);
        let mut arena: Box<[u32]> = vec![0u32; words].into_boxed_slice();
        // SAFETY: the model lives in an `Arc` this struct holds (its address is stable and it is
        // never mutated); the arena is a boxed slice this struct owns, used only through the
        // session. `session` is dropped first (field order), so neither 'static borrow outlives
        // what it points to, and neither is exposed beyond `&mut self`.
        let (m, bytes) = unsafe {
            (
                std::mem::transmute::<&Model<'_>, &'static Model<'static>>(model.model()),
                std::slice::from_raw_parts_mut(arena.as_mut_ptr().cast::<u8>(), words * 4),
            )
        };
        let session = Session::new(m, bytes).map_err(err)?;
        Ok(Stream {
            session,
            _arena: arena,
            model,
        })
    }
}

/// One stream over a model: `step_token`, `step_frame`, `run`, `reset`, `snapshot`, `restore`.
#[pyclass(name = "Session", module = "runnel")]
struct PySession {
    s: Stream,
}

impl PySession {
    fn new(model: Arc<Loaded>) -> PyResult<PySession> {
        Ok(PySession {
            s: Stream::new(model)?,
        })
    }

    fn output_dim(&self) -> usize {
        self.s.model.model().output_dim()
    }
}

#[pymethods]
impl PySession {
    /// A session over `model` from zero state (same as `model.session()`).
    #[new]
    fn py_new(model: &PyModel) -> PyResult<PySession> {
        PySession::new(model.inner.clone())
    }

    /// Feeds one token; returns the step's outputs (float32, `[output_dim]`).
    fn step_token<'py>(
        &mut self,
        py: Python<'py>,
        token: u32,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut out = vec![0f32; self.output_dim()];
        self.s.session.step_token(token, &mut out).map_err(err)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Feeds one frame (float32 `[frame_dim]`); returns the step's outputs.
    fn step_frame<'py>(
        &mut self,
        py: Python<'py>,
        frame: PyReadonlyArray1<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut out = vec![0f32; self.output_dim()];
        let f = frame.as_slice().map_err(err)?;
        self.s.session.step_frame(f, &mut out).map_err(err)?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Streams inputs from the session's current state: a 1-D integer array of tokens, or a 2-D
    /// float32 array of frames (`[T, frame_dim]`). Returns the outputs, `[T, output_dim]`.
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let dim = self.output_dim();
        let inputs = if let Ok(frames) = inputs.extract::<PyReadonlyArray2<'py, f32>>() {
            Inputs::Frames {
                dim: frames.shape()[1],
                data: frames.as_slice().map_err(err)?.to_vec(),
            }
        } else {
            Inputs::Tokens(inputs.extract().map_err(|_| {
                err("inputs: expected a 1-D array of token ids or a 2-D float32 array of frames")
            })?)
        };
        let out = run_session(&mut self.s.session, &inputs).map_err(err)?;
        let rows = out.len() / dim.max(1);
        let arr = PyArray1::from_vec(py, out);
        arr.reshape([rows, dim])
    }

    /// Forgets the stream: zero recurrent state, empty KV caches.
    fn reset(&mut self) {
        self.s.session.reset();
    }

    /// The session's state as bytes (`Model.info["snapshot_bytes"]` long), for `restore`.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut buf = vec![0u8; self.s.model.model().snapshot_bytes()];
        let n = self.s.session.snapshot(&mut buf).map_err(err)?;
        Ok(PyBytes::new(py, &buf[..n]))
    }

    /// Replaces the state with a snapshot of a session of the same model (refused otherwise,
    /// the state then unchanged).
    fn restore(&mut self, snap: &[u8]) -> PyResult<()> {
        self.s.session.restore(snap).map_err(err)
    }
}

/// Converts a contract model (safetensors) into a `.rnl` blob at `dst` (written atomically,
/// never over `src`) and returns the report: flash and state bytes, parameters, and per tensor
/// its stored type and quantization error. With `integer=True`, the integer-only mode calibrated
/// on `calibrate` (an inputs file as for `runnel run`); the report then also lists every
/// calibration site (`sites`: name, max_abs, scale, type).
#[pyfunction]
#[pyo3(signature = (src, dst, *, weights = "int8", kv = "int8", integer = false, calibrate = None))]
fn convert<'py>(
    py: Python<'py>,
    src: PathBuf,
    dst: PathBuf,
    weights: &str,
    kv: &str,
    integer: bool,
    calibrate: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut opts = ConvertOptions {
        weights: parse_dtype(weights).map_err(err)?,
        kv: parse_dtype(kv).map_err(err)?,
    };
    match (integer, &calibrate) {
        (true, None) => {
            return Err(RunnelError::new_err(
                "integer=True needs calibrate=DATA (an inputs file of typical data)",
            ))
        }
        (false, Some(_)) => {
            return Err(RunnelError::new_err(
                "calibrate= is for integer=True (the integer-only mode)",
            ))
        }
        (true, Some(_)) => {
            opts.weights = runnel::DType::I8;
            opts.kv = runnel::DType::I8;
        }
        (false, None) => {}
    }
    let (c, cal) = convert_file(&src, &dst, &opts, calibrate.as_deref()).map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("flash_bytes", c.blob.len())?;
    d.set_item("state_bytes", c.state_bytes)?;
    d.set_item("params", c.params)?;
    d.set_item("weights", opts.weights.name())?;
    d.set_item("kv", opts.kv.name())?;
    let tensors = PyList::empty(py);
    for t in &c.tensors {
        let e = PyDict::new(py);
        e.set_item("name", &t.name)?;
        e.set_item("shape", (t.shape[0], t.shape[1]))?;
        e.set_item("dtype", t.dtype.name())?;
        e.set_item("bytes", t.bytes)?;
        e.set_item("snr_db", t.snr_db)?;
        e.set_item("max_abs_err", t.max_abs_err)?;
        tensors.append(e)?;
    }
    d.set_item("tensors", tensors)?;
    d.set_item("integer", cal.is_some())?;
    if let Some(cal) = cal {
        let sites = PyList::empty(py);
        for r in cal.report() {
            let e = PyDict::new(py);
            e.set_item("name", &r.site)?;
            e.set_item("max_abs", r.max_abs)?;
            e.set_item("scale", r.scale)?;
            e.set_item("type", r.format)?;
            sites.append(e)?;
        }
        d.set_item("sites", sites)?;
    }
    Ok(d)
}

/// The native module.
#[pymodule]
fn _runnel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_class::<PySession>()?;
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add("RunnelError", m.py().get_type::<RunnelError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
