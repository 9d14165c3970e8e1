//! The control-plane model: routes per target prefix and peer, upstreams,
//! visibility, events and divergence.
