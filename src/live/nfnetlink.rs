//! nfnetlink message building for the nf_tables guard (`guard.rs`).
//!
//! `netlink-packet-core` frames and reads netlink messages, but no maintained crate
//! writes nf_tables rules without libnftnl (see `guard.rs`), so the nested attributes
//! of a batch are written here: a few lines of TLV handling into one `Vec<u8>`, so a
//! batch is one `send`. Reading the kernel's acks uses `netlink-packet-core`'s buffers.

use netlink_packet_core::{ErrorBuffer, NLA_F_NESTED, NLMSG_ALIGNTO, NLMSG_ERROR, NetlinkBuffer};

/// Builds one or more netlink messages into a buffer.
#[derive(Debug, Default)]
pub(crate) struct MsgBuilder {
    buf: Vec<u8>,
    msg_start: usize,
    nests: Vec<usize>,
}

impl MsgBuilder {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Starts a message; `header` is the family header (`nfgenmsg`).
    pub(crate) fn begin(&mut self, ty: u16, flags: u16, seq: u32, header: &[u8]) -> &mut Self {
        self.msg_start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // length, filled by `end`
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(header);
        self.pad();
        self
    }

    fn pad(&mut self) {
        let align = usize::from(NLMSG_ALIGNTO);
        self.buf.resize(self.buf.len().next_multiple_of(align), 0);
    }

    /// Appends an attribute.
    pub(crate) fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    /// Appends a big-endian u32 attribute (nf_tables uses network order).
    pub(crate) fn attr_be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }

    /// Appends a NUL-terminated string attribute.
    pub(crate) fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    /// Opens a nested attribute; close it with [`Self::nest_end`].
    pub(crate) fn nest(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    /// Closes the innermost nested attribute.
    pub(crate) fn nest_end(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// Finishes the current message (fills its length).
    pub(crate) fn end(&mut self) -> &mut Self {
        let len = u32::try_from(self.buf.len() - self.msg_start).unwrap_or(u32::MAX);
        self.buf[self.msg_start..self.msg_start + 4].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The bytes built so far.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// The messages of one datagram (or batch); stops at the first malformed one.
pub(crate) fn messages(buf: &[u8]) -> impl Iterator<Item = NetlinkBuffer<&[u8]>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let msg = NetlinkBuffer::new_checked(rest).ok()?;
        let len = usize::try_from(msg.length()).ok()?;
        let align = usize::from(NLMSG_ALIGNTO);
        rest = rest.get(len.next_multiple_of(align)..).unwrap_or_default();
        Some(msg)
    })
}

/// The errno of an `NLMSG_ERROR` message: `Some(0)` for an ACK, `None` for any other
/// message.
pub(crate) fn error_code(msg: &NetlinkBuffer<&[u8]>) -> Option<i32> {
    if msg.message_type() != NLMSG_ERROR {
        return None;
    }
    let e = ErrorBuffer::new_checked(msg.payload()).ok()?;
    Some(e.code().map_or(0, |c| -c.get()))
}

#[cfg(test)]
mod test {
    use netlink_packet_core::NlasIterator;

    use super::*;

    #[test]
    fn nested_attributes_have_their_length() {
        let mut b = MsgBuilder::new();
        b.begin(1, 0, 0, &[])
            .nest(5)
            .attr_be32(1, 7)
            .attr_be32(2, 8)
            .nest_end()
            .end();
        let bytes = b.into_bytes();
        let msg = messages(&bytes).next().unwrap();
        assert_eq!(msg.length() as usize, bytes.len());
        let outer = NlasIterator::new(msg.payload()).next().unwrap().unwrap();
        assert_eq!(outer.kind() & !NLA_F_NESTED, 5);
        assert!(outer.nested_flag());
        let v: Vec<_> = NlasIterator::new(outer.value())
            .map(|a| {
                let a = a.unwrap();
                (a.kind(), u32::from_be_bytes(a.value().try_into().unwrap()))
            })
            .collect();
        assert_eq!(v, vec![(1, 7), (2, 8)]);
    }

    #[test]
    fn error_codes_of_acks_and_refusals() {
        // NLMSG_ERROR answers as the kernel writes them: errno, then the request's header.
        let answer = |errno: i32| {
            let mut m = vec![36, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0];
            m.extend_from_slice(&(-errno).to_ne_bytes());
            m.extend_from_slice(&[20, 0, 0, 0, 0x0a, 0x10, 5, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
            m
        };
        for errno in [0, libc::ENOENT, libc::EPERM] {
            let m = answer(errno);
            let msg = messages(&m).next().unwrap();
            assert_eq!((msg.sequence_number(), error_code(&msg)), (9, Some(errno)));
        }
        let mut b = MsgBuilder::new();
        b.begin(3, 0, 1, &[]).end();
        let done = b.into_bytes();
        assert_eq!(error_code(&messages(&done).next().unwrap()), None);
        // Cut short: no message, no panic.
        let m = answer(libc::ENOENT);
        for n in 0..m.len() {
            assert_eq!(messages(&m[..n]).count(), 0);
        }
    }
}
