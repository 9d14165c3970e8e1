//! The paths graph (inline SVG).
