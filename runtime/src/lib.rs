//! # runnel
//!
//! A `no_std`, allocation-free runtime that runs small trained recurrent + attention models (LSTM,
//! GRU, causal multi-head attention over a fixed window) one step at a time, with f32, f16 or int8
//! weights borrowed in place from a `.rnl` blob and all state in memory the caller provides.
//!
//! ```no_run
//! # fn demo(blob: &[u8]) -> Result<(), runnel::Error> {
//! let model = runnel::Model::from_bytes(blob)?;          // validates everything once
//! let mut arena = [0u8; 64 * 1024];                     // model.state_bytes() is the exact need
//! let mut session = runnel::Session::new(&model, &mut arena)?;
//! let mut logits = [0f32; 96];                          // model.output_dim()
//! session.step_token(42, &mut logits)?;
//! # Ok(()) }
//! ```
//!
//! Every failure is an [`Error`] value; no input, however malformed, makes the runtime panic.
//! Transcendentals go through `libm` and float sums run in a fixed order, so every target
//! computes the same bits.
#![no_std]
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_endian = "big")]
compile_error!("runnel reads little-endian blobs in place and supports little-endian targets only");

#[cfg(feature = "std")]
extern crate std;

pub mod blocks;
mod error;
pub mod format;
pub mod kernels;
pub mod layout;
mod model;
pub mod schema;
mod session;
mod slices;
mod snapshot;

pub use blocks::{AttentionSpec, BlockSpec, Cell, RecurrentSpec};
pub use error::{Buffer, Error};
pub use model::Model;
pub use schema::{Activation, BlockKind, DType, InputKind, NormKind, PosKind};
pub use session::Session;

/// Fixed capacities of this build. The converter refuses models that exceed them.
pub mod limits {
    /// Blocks per model.
    pub const MAX_BLOCKS: usize = 16;
    /// Recurrent layers per model, summed over blocks.
    pub const MAX_RNN_LAYERS: usize = 64;
    /// Largest width, hidden size, vocabulary, frame size or FFN size.
    pub const MAX_DIM: usize = 1 << 16;
}

/// A byte array aligned for in-place use as a blob: `static B: AlignedBlob<N> = …`.
#[repr(C, align(16))]
pub struct AlignedBlob<B: ?Sized>(pub B);

/// Embeds a file as a `&'static [u8]` aligned to 16 bytes, ready for [`Model::from_bytes`]:
/// `static BLOB: &[u8] = runnel::include_blob!("model.rnl");`
#[macro_export]
macro_rules! include_blob {
    ($path:expr) => {{
        static ALIGNED: &$crate::AlignedBlob<[u8]> = &$crate::AlignedBlob(*include_bytes!($path));
        &ALIGNED.0
    }};
}
