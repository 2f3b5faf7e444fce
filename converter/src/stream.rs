//! The `runnel run` files (contract §4) and streaming a model over them.

use std::io::Write;

use safetensors::{Dtype as StDtype, SafeTensors};

use crate::Error;

/// A stream of inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// Token ids, one per step.
    Tokens(Vec<i64>),
    /// Frames, `dim` features per step, row-major.
    Frames {
        /// Features per frame.
        dim: usize,
        /// `[T * dim]`.
        data: Vec<f32>,
    },
}

impl Inputs {
    /// Number of steps.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Tokens(t) => t.len(),
            Inputs::Frames { dim, data } => data.len().checked_div(*dim).unwrap_or(0),
        }
    }
    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads an inputs file: `tokens` (I64 or I32, `[T]`) or `frames` (F32, `[T, dim]`).
pub fn read_inputs(bytes: &[u8]) -> Result<Inputs, Error> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::new(format!("inputs: not a valid safetensors file: {e}")))?;
    let names = st.names();
    if names.contains(&"tokens") {
        let v = st
            .tensor("tokens")
            .map_err(|e| Error::new(format!("inputs: tensor `tokens`: {e}")))?;
        if v.shape().len() != 1 {
            return Err(Error::new(format!(
                "inputs: tensor `tokens` has shape {:?}, expected [T]",
                v.shape()
            )));
        }
        let d = v.data();
        let toks = match v.dtype() {
            StDtype::I64 => d
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            StDtype::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i64)
                .collect(),
            other => {
                return Err(Error::new(format!(
                    "inputs: tensor `tokens` has dtype {other:?}, expected I64 or I32"
                )))
            }
        };
        Ok(Inputs::Tokens(toks))
    } else if names.contains(&"frames") {
        let v = st
            .tensor("frames")
            .map_err(|e| Error::new(format!("inputs: tensor `frames`: {e}")))?;
        if v.shape().len() != 2 {
            return Err(Error::new(format!(
                "inputs: tensor `frames` has shape {:?}, expected [T, dim]",
                v.shape()
            )));
        }
        if v.dtype() != StDtype::F32 {
            return Err(Error::new(format!(
                "inputs: tensor `frames` has dtype {:?}, expected F32",
                v.dtype()
            )));
        }
        let data = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Inputs::Frames {
            dim: v.shape()[1],
            data,
        })
    } else {
        Err(Error::new(
            "inputs: the file holds neither `tokens` nor `frames`",
        ))
    }
}

/// Reads an outputs file's `outputs` tensor (F32, `[T, dim]`), returning `(T, dim, data)`.
pub fn read_outputs(bytes: &[u8]) -> Result<(usize, usize, Vec<f32>), Error> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::new(format!("outputs: not a valid safetensors file: {e}")))?;
    let v = st
        .tensor("outputs")
        .map_err(|e| Error::new(format!("outputs: tensor `outputs`: {e}")))?;
    if v.dtype() != StDtype::F32 || v.shape().len() != 2 {
        return Err(Error::new("outputs: tensor `outputs` must be F32 [T, dim]"));
    }
    let data = v
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((v.shape()[0], v.shape()[1], data))
}

/// The start of an outputs file holding `outputs` (F32, `[steps, dim]`): the 8-byte
/// little-endian header length, then the JSON header padded with spaces to a multiple of 8 bytes,
/// byte for byte what `safetensors::serialize` writes. The `steps * dim` little-endian F32s follow.
pub fn outputs_header(steps: usize, dim: usize) -> Result<Vec<u8>, Error> {
    let data_len = steps
        .checked_mul(dim)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| Error::new(format!("outputs: {steps} x {dim} F32s is too large")))?;
    let mut json = format!(
        r#"{{"outputs":{{"dtype":"F32","shape":[{steps},{dim}],"data_offsets":[0,{data_len}]}}}}"#
    )
    .into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut header = (json.len() as u64).to_le_bytes().to_vec();
    header.extend_from_slice(&json);
    Ok(header)
}

/// Writes an outputs file (see [`read_outputs`]) one row at a time, holding only one row's bytes:
/// the header goes out first, since the number of rows is known up front.
pub struct OutputsWriter<W: Write> {
    out: W,
    dim: usize,
    rows_left: usize,
    row_bytes: Vec<u8>,
}

fn write_err(e: std::io::Error) -> Error {
    Error::new(format!("outputs: {e}"))
}

impl<W: Write> OutputsWriter<W> {
    /// Writes the header of a `[steps, dim]` file to `out`.
    pub fn new(mut out: W, steps: usize, dim: usize) -> Result<Self, Error> {
        out.write_all(&outputs_header(steps, dim)?)
            .map_err(write_err)?;
        Ok(OutputsWriter {
            out,
            dim,
            rows_left: steps,
            row_bytes: Vec::with_capacity(dim * 4),
        })
    }

    /// Appends the next row.
    pub fn write_row(&mut self, row: &[f32]) -> Result<(), Error> {
        if row.len() != self.dim || self.rows_left == 0 {
            return Err(Error::new(format!(
                "outputs: a row of {} values, {} rows of {} still expected",
                row.len(),
                self.rows_left,
                self.dim
            )));
        }
        self.row_bytes.clear();
        self.row_bytes
            .extend(row.iter().flat_map(|x| x.to_le_bytes()));
        self.out.write_all(&self.row_bytes).map_err(write_err)?;
        self.rows_left -= 1;
        Ok(())
    }

    /// Checks that every row was written, flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        if self.rows_left != 0 {
            return Err(Error::new(format!(
                "outputs: {} rows were never written",
                self.rows_left
            )));
        }
        self.out.flush().map_err(write_err)?;
        Ok(self.out)
    }
}

/// Checks that the inputs fit a model's input kind (tokens for tokens, frames of its width).
pub fn check_inputs(inputs: &Inputs, kind: runnel::InputKind) -> Result<(), Error> {
    use runnel::InputKind;
    match (inputs, kind) {
        (Inputs::Tokens(_), InputKind::Tokens { .. }) => Ok(()),
        (Inputs::Frames { dim, .. }, InputKind::Frames { dim: want }) if *dim == want => Ok(()),
        (Inputs::Frames { dim, .. }, InputKind::Frames { dim: want }) => Err(Error::new(format!(
            "inputs: frames have {dim} features, the model takes {want}"
        ))),
        (_, kind) => Err(Error::new(format!(
            "inputs do not match the model's input kind ({kind:?})"
        ))),
    }
}

/// Runs `f` on a fresh session of `model`.
pub(crate) fn with_session<T>(
    model: &runnel::Model<'_>,
    f: impl FnOnce(&mut runnel::Session<'_, '_>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut arena = vec![0u8; model.state_bytes() + 3];
    let mut session = runnel::Session::new(model, &mut arena)?;
    f(&mut session)
}

/// Streams `inputs` through a fresh session, one step at a time; returns `[T * output_dim]`.
pub fn run(model: &runnel::Model<'_>, inputs: &Inputs) -> Result<Vec<f32>, Error> {
    with_session(model, |s| run_session(s, inputs))
}

/// Streams `inputs` through a fresh session into an outputs file written to `out`, in memory
/// that does not grow with the number of steps; returns `out`, flushed.
pub fn run_to<W: Write>(model: &runnel::Model<'_>, inputs: &Inputs, out: W) -> Result<W, Error> {
    let mut w = OutputsWriter::new(out, inputs.len(), model.output_dim())?;
    with_session(model, |s| {
        run_session_with(s, inputs, |row| w.write_row(row))
    })?;
    w.finish()
}

/// Streams `inputs` through `session` (which keeps its state), one step at a time.
pub fn run_session(
    session: &mut runnel::Session<'_, '_>,
    inputs: &Inputs,
) -> Result<Vec<f32>, Error> {
    let mut out = Vec::with_capacity(inputs.len() * session.model().output_dim());
    run_session_with(session, inputs, |row| {
        out.extend_from_slice(row);
        Ok(())
    })?;
    Ok(out)
}

/// Streams `inputs` through `session` (which keeps its state), one step at a time, handing each
/// step's output row to `each`; stops at the first error.
pub fn run_session_with(
    session: &mut runnel::Session<'_, '_>,
    inputs: &Inputs,
    each: impl FnMut(&[f32]) -> Result<(), Error>,
) -> Result<(), Error> {
    run_session_probed(session, inputs, &mut (), each)
}

/// [`run_session_with`], showing `probe` the float step's values at every calibration site
/// (see [`runnel::Session::step_token_probed`]).
pub fn run_session_probed(
    session: &mut runnel::Session<'_, '_>,
    inputs: &Inputs,
    probe: &mut impl runnel::blocks::Probe,
    mut each: impl FnMut(&[f32]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut row = vec![0f32; session.model().output_dim()];
    match inputs {
        Inputs::Tokens(toks) => {
            for (t, &tok) in toks.iter().enumerate() {
                let id = u32::try_from(tok).map_err(|_| {
                    Error::new(format!("step {t}: token {tok} is negative or too large"))
                })?;
                session
                    .step_token_probed(id, &mut row, probe)
                    .map_err(|e| Error::new(format!("step {t}: {e}")))?;
                each(&row)?;
            }
        }
        Inputs::Frames { dim: 0, .. } => {
            return Err(Error::new("inputs: frames with no features"));
        }
        Inputs::Frames { dim, data } => {
            for (t, frame) in data.chunks_exact(*dim).enumerate() {
                session
                    .step_frame_probed(frame, &mut row, probe)
                    .map_err(|e| Error::new(format!("step {t}: {e}")))?;
                each(&row)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `safetensors` itself writes for `outputs`.
    fn serialized(steps: usize, dim: usize, data: &[f32]) -> Vec<u8> {
        let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        let view =
            safetensors::tensor::TensorView::new(StDtype::F32, vec![steps, dim], &bytes).unwrap();
        safetensors::serialize([("outputs", view)], None).unwrap()
    }

    fn streamed(steps: usize, dim: usize, data: &[f32]) -> Vec<u8> {
        let mut w = OutputsWriter::new(Vec::new(), steps, dim).unwrap();
        for row in data.chunks_exact(dim.max(1)) {
            w.write_row(row).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn streamed_outputs_equal_the_safetensors_serialization() {
        for (steps, dim) in [(0, 3), (1, 1), (3, 5), (7, 50), (12, 2)] {
            let data: Vec<f32> = (0..steps * dim).map(|i| i as f32 * 0.37 - 4.0).collect();
            let s = streamed(steps, dim, &data);
            assert_eq!(s, serialized(steps, dim, &data), "{steps} x {dim}");
            assert_eq!(read_outputs(&s).unwrap(), (steps, dim, data));
        }
    }

    #[test]
    fn the_writer_insists_on_the_announced_rows() {
        let mut w = OutputsWriter::new(Vec::new(), 2, 3).unwrap();
        assert!(w.write_row(&[1.0, 2.0]).is_err());
        w.write_row(&[1.0, 2.0, 3.0]).unwrap();
        assert!(w.finish().is_err());
        let mut w = OutputsWriter::new(Vec::new(), 1, 1).unwrap();
        w.write_row(&[1.0]).unwrap();
        assert!(w.write_row(&[1.0]).is_err());
        assert!(outputs_header(usize::MAX, 2).is_err());
    }
}
