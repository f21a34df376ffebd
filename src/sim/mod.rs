//! The lab simulator: segments, simulated hosts and the real engine in virtual time.
