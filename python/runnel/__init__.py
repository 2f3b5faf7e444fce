"""runnel: convert PyTorch models and run them one step at a time, in Python, with the same
runtime (and the same bits) as on the microcontroller.

    import runnel
    report = runnel.convert("model.safetensors", "model.rnl", weights="int8", kv="int8")
    model = runnel.Model.load("model.rnl")
    session = model.session()
    logits = session.step_token(42)          # numpy float32 [output_dim]
    outputs = session.run(tokens)            # [T, output_dim], continuing the stream

`runnel.torch.export(module, path, ...)` writes a contract model from a PyTorch module (needs
torch); `runnel.reference` is the contract's PyTorch reference implementation (needs torch:
`RunnelRef` runs a whole sequence with stock modules, `StepRunner` one step at a time,
`load_model`/`save_model` read and write contract files), to compare against.
"""
from ._runnel import Model, RunnelError, Session, __version__, convert

__all__ = ["Model", "RunnelError", "Session", "convert", "__version__"]
