//! The RIPE RIS Live websocket stream.
