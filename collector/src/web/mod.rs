//! The collector's read-only web view: who carries the traffic now, over
//! time, along which paths, and the evidence behind every change
//! (docs/web.md). Server-rendered HTML (maud: every value escaped), inline
//! SVG charts drawn here, one embedded stylesheet and one small script
//! (live updates by Server-Sent Events); nothing is fetched from
//! elsewhere.

pub mod chart;
pub mod graph;
