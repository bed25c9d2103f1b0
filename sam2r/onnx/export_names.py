"""Names shared by the exporter and the torch-free runtime (this module imports nothing)."""

MANIFEST = "manifest.json"
GRAPHS = ("image_encoder", "prompt_decoder", "memory_attention", "memory_encoder")
