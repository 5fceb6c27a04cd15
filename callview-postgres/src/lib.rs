//! callview postgres store
