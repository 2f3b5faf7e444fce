//! The `runnel run` files (contract §4) and streaming a model over them.

use std::collections::HashMap;

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

/// Serializes `outputs` (F32, `[T, dim]`).
pub fn write_outputs(steps: usize, dim: usize, data: &[f32]) -> Result<Vec<u8>, Error> {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let view = safetensors::tensor::TensorView::new(StDtype::F32, vec![steps, dim], bytes)
        .map_err(|e| Error::new(format!("outputs: {e}")))?;
    let mut map = HashMap::new();
    map.insert("outputs".to_string(), view);
    safetensors::serialize(map, None).map_err(|e| Error::new(format!("outputs: {e}")))
}

/// Streams `inputs` through a fresh session, one step at a time; returns `[T * output_dim]`.
pub fn run(model: &runnel::Model<'_>, inputs: &Inputs) -> Result<Vec<f32>, Error> {
    let mut arena = vec![0u8; model.state_bytes() + 3];
    let mut session = runnel::Session::new(model, &mut arena)?;
    run_session(&mut session, inputs)
}

/// Streams `inputs` through `session` (which keeps its state), one step at a time.
pub fn run_session(
    session: &mut runnel::Session<'_, '_>,
    inputs: &Inputs,
) -> Result<Vec<f32>, Error> {
    let od = session.model().output_dim();
    let mut out = vec![0f32; inputs.len() * od];
    match inputs {
        Inputs::Tokens(toks) => {
            for (t, (&tok, row)) in toks.iter().zip(out.chunks_exact_mut(od)).enumerate() {
                let id = u32::try_from(tok).map_err(|_| {
                    Error::new(format!("step {t}: token {tok} is negative or too large"))
                })?;
                session
                    .step_token(id, row)
                    .map_err(|e| Error::new(format!("step {t}: {e}")))?;
            }
        }
        Inputs::Frames { dim, data } => {
            for (t, (frame, row)) in data
                .chunks_exact(*dim)
                .zip(out.chunks_exact_mut(od))
                .enumerate()
            {
                session
                    .step_frame(frame, row)
                    .map_err(|e| Error::new(format!("step {t}: {e}")))?;
            }
        }
    }
    Ok(out)
}
