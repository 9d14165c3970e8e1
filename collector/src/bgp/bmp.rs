//! The BMP listener (RFC 7854): routers' route monitoring, peer up and
//! down, statistics.
