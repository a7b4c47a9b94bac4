"""Bitcoin and Bitcoin SV: kernels, wire protocol, peer clients, header and peer stores."""
