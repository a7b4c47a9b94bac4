//! Chord ring arithmetic and hashing (filled in by the chord kernel work).
