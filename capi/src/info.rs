//! What `runnel_model_get_info()` reports: [`runnel_model_info`] and its small enums; and what
//! `runnel_model_get_integer_scales()` reports: [`runnel_integer_scales`].

use runnel::{DType, InputKind, Model};

/// What a model consumes at each step (`runnel_model_info.input_kind`). The C type is a
/// `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum runnel_input_kind {
    /// Token ids in `[0, input_dim)`: use `runnel_session_step_token()` (or, on an integer-only
    /// model, `runnel_session_step_token_int()`).
    RUNNEL_INPUT_TOKENS = 0,
    /// Frames of `input_dim` floats: use `runnel_session_step_frame()` (or, on an integer-only
    /// model, frames of `input_dim` int8 values: `runnel_session_step_frame_int()`).
    RUNNEL_INPUT_FRAMES = 1,
}

/// Storage type of weights or of the attention KV cache (`runnel_model_info`). The C type is a
/// `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum runnel_dtype {
    /// IEEE binary32.
    RUNNEL_DTYPE_F32 = 0,
    /// IEEE binary16.
    RUNNEL_DTYPE_F16 = 1,
    /// Symmetric int8 with one f32 scale per row.
    RUNNEL_DTYPE_INT8 = 2,
}

/// What `runnel_model_get_info()` reports about an opened model.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct runnel_model_info {
    /// Bytes of state arena a session needs, from a 4-byte aligned address (an unaligned arena
    /// needs up to 3 more). The "ram" figure `runnel convert` prints.
    pub state_bytes: u32,
    /// `RUNNEL_INPUT_TOKENS` or `RUNNEL_INPUT_FRAMES`.
    pub input_kind: runnel_input_kind,
    /// Vocabulary size (tokens) or floats per frame (frames).
    pub input_dim: u32,
    /// Floats each step writes (logits per step).
    pub output_dim: u32,
    /// Width after the input layer.
    pub d_model: u32,
    /// Bytes of the blob (its declared length; trailing padding excluded).
    pub blob_bytes: u32,
    /// Number of weights (matrix elements, biases, norm parameters).
    pub param_count: u32,
    /// Storage type of the weight matrices.
    pub weight_type: runnel_dtype,
    /// Storage type of the attention KV cache.
    pub kv_type: runnel_dtype,
    /// Bytes of a state snapshot (`runnel_session_snapshot()`).
    pub snapshot_bytes: u32,
}

/// The grids of an integer-only model (`runnel convert --integer`), what
/// `runnel_model_get_integer_scales()` reports. Only needed to relate the integers of
/// `runnel_session_step_token_int()` / `runnel_session_step_frame_int()` to real values (e.g.
/// offline, or once at start-up): stepping, and taking the argmax of the logits, need no
/// floating point.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct runnel_integer_scales {
    /// The int8 frame grid of a frame model: the int8 frame value `q` stands for the feature
    /// value `q * frame_scale` (a float frame value `v` is `q = round(v * (1 / frame_scale))`,
    /// clamped to `[-127, 127]`: how `runnel_session_step_frame()` rounds it). 1.0 for a token
    /// model.
    pub frame_scale: f32,
    /// The logit grid: the integer logit `l` stands for the logit `l * logit_scale` (what
    /// `runnel_session_step_token()` / `runnel_session_step_frame()` return as floats on the same
    /// model). Positive, so the largest `l` is the largest logit.
    pub logit_scale: f32,
}

/// The grids of an integer-only model, `None` for the other modes.
pub(crate) fn integer_scales_of(m: &Model<'_>) -> Option<runnel_integer_scales> {
    if !m.is_integer() {
        return None;
    }
    let (frame_scale, logit_scale) = m.integer_scales();
    Some(runnel_integer_scales {
        frame_scale,
        logit_scale,
    })
}

/// The C description of an opened model.
pub(crate) fn info_of(m: &Model<'_>) -> runnel_model_info {
    let (input_kind, input_dim) = match m.input_kind() {
        InputKind::Tokens { vocab } => (runnel_input_kind::RUNNEL_INPUT_TOKENS, vocab),
        InputKind::Frames { dim } => (runnel_input_kind::RUNNEL_INPUT_FRAMES, dim),
    };
    // Every figure is stored as a u32 in the blob (or bounded by 2^16 per dimension).
    let u = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    runnel_model_info {
        state_bytes: u(m.state_bytes()),
        input_kind,
        input_dim: u(input_dim),
        output_dim: u(m.output_dim()),
        d_model: u(m.d_model()),
        blob_bytes: u(m.blob_bytes()),
        param_count: u(m.param_count()),
        weight_type: dtype_of(m.weight_type()),
        kv_type: dtype_of(m.kv_type()),
        snapshot_bytes: u(m.snapshot_bytes()),
    }
}

const fn dtype_of(d: DType) -> runnel_dtype {
    match d {
        DType::F32 => runnel_dtype::RUNNEL_DTYPE_F32,
        DType::F16 => runnel_dtype::RUNNEL_DTYPE_F16,
        DType::I8 => runnel_dtype::RUNNEL_DTYPE_INT8,
    }
}
