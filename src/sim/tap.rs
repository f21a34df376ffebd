//! Segments attached to real TAP devices (`--tap SEGMENT=IFNAME`, cargo feature `tap`).
//!
//! Frames put on an attached segment are written to the TAP device, and frames the
//! kernel sends on it appear on the segment. A real network can't be fast-forwarded,
//! so with a TAP attached the runner paces virtual time to the wall clock.

use std::io::ErrorKind;

use tun_tap::{Iface, Mode};

use super::SimError;

/// Largest frame read from a device.
const MAX_FRAME: usize = 65_535 + 14;

/// One segment's TAP device.
pub struct TapPort {
    /// Segment index.
    pub segment: usize,
    /// Interface name.
    pub name: String,
    iface: Iface,
}

impl std::fmt::Debug for TapPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapPort")
            .field("segment", &self.segment)
            .field("name", &self.name)
            .finish()
    }
}

impl TapPort {
    /// Opens (or creates) the TAP device `ifname`, non-blocking, without packet info.
    pub fn open(segment: usize, ifname: &str) -> Result<Self, SimError> {
        let err = |e: std::io::Error| SimError::Tap {
            ifname: ifname.to_owned(),
            message: if e.kind() == ErrorKind::PermissionDenied {
                format!("{e} (attaching a TAP device needs CAP_NET_ADMIN)")
            } else {
                e.to_string()
            },
        };
        let iface = Iface::without_packet_info(ifname, Mode::Tap).map_err(err)?;
        iface.set_non_blocking().map_err(err)?;
        Ok(Self {
            segment,
            name: iface.name().to_owned(),
            iface,
        })
    }

    /// Every frame waiting on the device.
    pub fn recv_all(&self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut buf = vec![0u8; MAX_FRAME];
        // Bounded so a busy device cannot starve the simulation.
        for _ in 0..256 {
            match self.iface.recv(&mut buf) {
                Ok(n) if n > 0 => frames.push(buf[..n].to_vec()),
                // WouldBlock (nothing waiting), EOF, or a device gone: stop for now.
                _ => break,
            }
        }
        frames
    }

    /// Writes a frame to the device; a full or downed device drops it, like a link.
    pub fn send(&self, frame: &[u8]) {
        let _ = self.iface.send(frame);
    }
}
