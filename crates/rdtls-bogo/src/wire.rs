//! The runner's DTLS transport: datagrams and clock commands framed on one TCP stream.
//!
//! After the shim sends its id (a little-endian u64), each message starts with an opcode byte:
//! `P` + u32 length + datagram (both directions); from the runner only, `T` + u64 nanoseconds
//! (a simulated timeout: the shim answers `t` at once, advances its clock and handles the
//! timer), `M` + u32 (a new MTU), `E` + u64 nanoseconds (the next timeout must be exactly this;
//! `u64::MAX` means none) and `U` + u32 milliseconds (a new initial retransmission timeout).
//! All integers but the id are big-endian.

use std::io::{self, Read, Write};
use std::time::Duration;

/// Largest datagram the runner may send (its own limit is far below this).
pub(crate) const MAX_DATAGRAM: usize = 1 << 20;

/// One message from the runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A datagram for the shim.
    Packet(Vec<u8>),
    /// Advance the clock by this much and handle the timer (already acknowledged).
    Timeout(Duration),
    /// The path MTU is now this.
    Mtu(u32),
    /// The shim's next timeout must be exactly this far away (`None`: no timer at all).
    ExpectTimeout(Option<Duration>),
    /// Use this initial retransmission timeout from now on.
    InitialTimeout(Duration),
}

/// The shim's end of the runner's stream.
#[derive(Debug)]
pub(crate) struct Link<S> {
    stream: S,
}

impl Link<std::net::TcpStream> {
    /// Ends the conversation after a failure without resetting the stream: our side is shut
    /// for writing, and whatever the runner still sends is read (and dropped) until it closes
    /// its side or `limit` passes. Closing a socket with unread data sends a reset, which can
    /// destroy the alert the runner has not read yet, and fail a test that expects that alert.
    pub(crate) fn linger(&mut self, limit: Duration) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let deadline = std::time::Instant::now() + limit;
        let mut sink = [0u8; 4096];
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.stream.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

impl<S: Read + Write> Link<S> {
    /// Starts the conversation by sending the shim id.
    pub(crate) fn open(mut stream: S, shim_id: u64) -> io::Result<Self> {
        stream.write_all(&shim_id.to_le_bytes())?;
        stream.flush()?;
        Ok(Self { stream })
    }

    /// Sends one datagram.
    pub(crate) fn send_packet(&mut self, datagram: &[u8]) -> io::Result<()> {
        let len = u32::try_from(datagram.len()).map_err(|_| io::Error::other("datagram too large"))?;
        let mut header = [0u8; 5];
        header[0] = b'P';
        header[1..].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&header)?;
        self.stream.write_all(datagram)?;
        self.stream.flush()
    }

    /// Waits for the runner's next message. A timeout is acknowledged before it is returned,
    /// as BoringSSL's shim does. `Ok(None)`: the runner closed the stream.
    pub(crate) fn next_op(&mut self) -> io::Result<Option<Op>> {
        let mut opcode = [0u8; 1];
        if self.stream.read(&mut opcode)? == 0 {
            return Ok(None);
        }
        let op = match opcode[0] {
            b'P' => {
                let len = self.read_u32()? as usize;
                if len > MAX_DATAGRAM {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "datagram too large"));
                }
                let mut datagram = vec![0; len];
                self.stream.read_exact(&mut datagram)?;
                Op::Packet(datagram)
            }
            b'T' => {
                let nanos = self.read_u64()?;
                self.stream.write_all(b"t")?;
                self.stream.flush()?;
                Op::Timeout(Duration::from_nanos(nanos))
            }
            b'M' => Op::Mtu(self.read_u32()?),
            b'E' => match self.read_u64()? {
                u64::MAX => Op::ExpectTimeout(None),
                nanos => Op::ExpectTimeout(Some(Duration::from_nanos(nanos))),
            },
            b'U' => Op::InitialTimeout(Duration::from_millis(u64::from(self.read_u32()?))),
            other => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unknown opcode {other:#04x}")));
            }
        };
        Ok(Some(op))
    }

    fn read_u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.stream.read_exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    fn read_u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.stream.read_exact(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream whose reads come from a script and whose writes are recorded.
    struct Script {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn link(input: Vec<u8>) -> Link<Script> {
        Link::open(Script { input: io::Cursor::new(input), output: Vec::new() }, 0x0102_0304_0506_0708).unwrap()
    }

    #[test]
    fn the_id_goes_first_little_endian_and_packets_are_length_prefixed() {
        let mut l = link(Vec::new());
        l.send_packet(b"abc").unwrap();
        assert_eq!(l.stream.output, [8, 7, 6, 5, 4, 3, 2, 1, b'P', 0, 0, 0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn every_opcode_parses() {
        let mut input = vec![b'P', 0, 0, 0, 2, 0xaa, 0xbb];
        input.extend([b'T', 0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x00]); // one second
        input.extend([b'M', 0, 0, 0x01, 0x00]);
        input.extend([b'E', 0, 0, 0, 0, 0x1d, 0xcd, 0x65, 0x00]); // half a second
        input.extend([b'E', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        input.extend([b'U', 0, 0, 0x01, 0xf4]);
        let mut l = link(input);
        assert_eq!(l.next_op().unwrap(), Some(Op::Packet(vec![0xaa, 0xbb])));
        assert_eq!(l.next_op().unwrap(), Some(Op::Timeout(Duration::from_secs(1))));
        assert_eq!(l.next_op().unwrap(), Some(Op::Mtu(256)));
        assert_eq!(l.next_op().unwrap(), Some(Op::ExpectTimeout(Some(Duration::from_millis(500)))));
        assert_eq!(l.next_op().unwrap(), Some(Op::ExpectTimeout(None)));
        assert_eq!(l.next_op().unwrap(), Some(Op::InitialTimeout(Duration::from_millis(500))));
        assert_eq!(l.next_op().unwrap(), None);
        // The timeout was acknowledged with one `t` after the id.
        assert_eq!(&l.stream.output[8..], b"t");
    }

    #[test]
    fn truncated_and_unknown_input_is_an_error() {
        assert!(link(vec![b'P', 0, 0, 0, 5, 1, 2]).next_op().is_err());
        assert!(link(vec![b'T', 0, 0]).next_op().is_err());
        assert!(link(vec![b'X']).next_op().is_err());
        assert!(link(vec![b'P', 0xff, 0xff, 0xff, 0xff]).next_op().is_err());
    }
}
