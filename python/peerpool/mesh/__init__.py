"""peerpool.mesh: a libp2p node wire-compatible with the Go agent networks, and pools on it."""
