//! Engine behaviour tests (harness in this module).
