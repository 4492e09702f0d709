"""The paper's scaling study (§4.3-4.4): architectures by name, compute accounting, sweeps and law fits."""
