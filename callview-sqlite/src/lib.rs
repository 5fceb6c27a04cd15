//! callview sqlite store
