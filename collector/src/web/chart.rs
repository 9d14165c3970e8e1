//! Timeline charts (inline SVG).
