"""The official `sam2.utils` modules scripts import from: `transforms` (`SAM2Transforms`),
`misc` (connected components, boxes, hole filling, video loading) and `amg` (the automatic mask
generator's helpers), as thin adapters over `sam2r.ops` and `sam2r.io`."""
