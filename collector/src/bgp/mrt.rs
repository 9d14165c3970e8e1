//! MRT files (RFC 6396): `TABLE_DUMP_V2` / `TABLE_DUMP` RIB dumps as
//! [`super::Snapshot`]s and `BGP4MP` updates as [`super::Update`]s.
