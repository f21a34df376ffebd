//! The RON configuration file: schema, defaults, validation with line:column.
