//! MRT archives over HTTP(S) or in a local directory, in the RouteViews
//! or RIPE RIS layout, for a time range.
