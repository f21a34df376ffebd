//! Command line: `run`, `check`, `status`, `replay` and the top-level `--scenario`.
