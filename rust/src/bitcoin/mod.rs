//! Bitcoin kernels: message framing, the transaction preprocessor, the chunk splitter, headers.
