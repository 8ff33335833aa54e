//! The byte format of a calibration snapshot: little-endian numbers,
//! length-prefixed strings and lists, written to and read from any byte
//! stream. A snapshot is the server's own cache of a fitted state (read back
//! by the same build that wrote it, or discarded), so the format is plain and
//! versioned as a whole, not evolved field by field.
//!
//! Reading never trusts a length: every list is bounded by what the stream
//! can still hold ([`Reader::len`]), and the caller checks every index it
//! reads against the lists it indexes, so a damaged snapshot is an error, not
//! a panic or a huge allocation.

use std::io::{Read, Write};

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("reading the snapshot: {0}")]
    Io(#[from] std::io::Error),
    #[error("the snapshot is not usable: {0}")]
    Format(String),
}

pub fn bad(what: impl Into<String>) -> SnapshotError {
    SnapshotError::Format(what.into())
}

/// Writes the format's values to `W`.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer { out, written: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    pub fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.written += b.len() as u64;
        self.out.write_all(b)
    }
    pub fn u8(&mut self, v: u8) -> std::io::Result<()> {
        self.bytes(&[v])
    }
    pub fn bool(&mut self, v: bool) -> std::io::Result<()> {
        self.u8(u8::from(v))
    }
    pub fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn i64(&mut self, v: i64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn f32(&mut self, v: f32) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn f64(&mut self, v: f64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn len(&mut self, n: usize) -> std::io::Result<()> {
        self.u64(n as u64)
    }
    pub fn str(&mut self, s: &str) -> std::io::Result<()> {
        self.len(s.len())?;
        self.bytes(s.as_bytes())
    }
    /// A list of fixed-width values, through a buffer (one write per block,
    /// not per value).
    fn list<T: Copy, const N: usize>(&mut self, v: &[T], bytes: impl Fn(T) -> [u8; N]) -> std::io::Result<()> {
        self.len(v.len())?;
        let mut block = Vec::with_capacity(N * v.len().min(8192));
        for chunk in v.chunks(8192) {
            block.clear();
            chunk.iter().for_each(|&x| block.extend_from_slice(&bytes(x)));
            self.bytes(&block)?;
        }
        Ok(())
    }
    pub fn f64s(&mut self, v: &[f64]) -> std::io::Result<()> {
        self.list(v, f64::to_le_bytes)
    }
    pub fn u32s(&mut self, v: &[u32]) -> std::io::Result<()> {
        self.list(v, u32::to_le_bytes)
    }
    pub fn i64s(&mut self, v: &[i64]) -> std::io::Result<()> {
        self.list(v, i64::to_le_bytes)
    }
    pub fn bools(&mut self, v: &[bool]) -> std::io::Result<()> {
        self.len(v.len())?;
        let block: Vec<u8> = v.iter().map(|&b| u8::from(b)).collect();
        self.bytes(&block)
    }
}

/// Reads what [`Writer`] wrote.
pub struct Reader<R: Read> {
    input: R,
    /// What the stream says it holds in all (its parts' sizes), bounding
    /// every length read.
    remaining: u64,
}

impl<R: Read> Reader<R> {
    /// `size`: the stream's length in bytes.
    pub fn new(input: R, size: u64) -> Self {
        Reader { input, remaining: size }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    pub fn bytes(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        if buf.len() as u64 > self.remaining {
            return Err(bad("it ends early"));
        }
        self.remaining -= buf.len() as u64;
        self.input.read_exact(buf)?;
        Ok(())
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut b = [0u8; N];
        self.bytes(&mut b)?;
        Ok(b)
    }
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn bool(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad("a flag is neither 0 nor 1")),
        }
    }
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f32(&mut self) -> Result<f32, SnapshotError> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, SnapshotError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    /// A count of items of at least `item_bytes` each, checked against what
    /// the stream can still hold.
    pub fn len(&mut self, item_bytes: u64) -> Result<usize, SnapshotError> {
        let n = self.u64()?;
        if n.saturating_mul(item_bytes.max(1)) > self.remaining {
            return Err(bad("a list is longer than the snapshot"));
        }
        usize::try_from(n).map_err(|_| bad("a list is longer than memory"))
    }
    pub fn string(&mut self) -> Result<String, SnapshotError> {
        let n = self.len(1)?;
        let mut b = vec![0u8; n];
        self.bytes(&mut b)?;
        String::from_utf8(b).map_err(|_| bad("a name is not UTF-8"))
    }
    fn block<T>(&mut self, width: usize, each: impl Fn(&[u8]) -> T) -> Result<Vec<T>, SnapshotError> {
        let n = self.len(width as u64)?;
        let mut out = Vec::with_capacity(n);
        let mut block = vec![0u8; width * n.min(8192)];
        let mut left = n;
        while left > 0 {
            let take = left.min(8192);
            let b = &mut block[..take * width];
            self.bytes(b)?;
            out.extend(b.chunks_exact(width).map(&each));
            left -= take;
        }
        Ok(out)
    }
    pub fn f64s(&mut self) -> Result<Vec<f64>, SnapshotError> {
        self.block(8, |b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub fn u32s(&mut self) -> Result<Vec<u32>, SnapshotError> {
        self.block(4, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    pub fn i64s(&mut self) -> Result<Vec<i64>, SnapshotError> {
        self.block(8, |b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub fn bools(&mut self) -> Result<Vec<bool>, SnapshotError> {
        let v = self.block(1, |b| b[0])?;
        if v.iter().any(|&b| b > 1) {
            return Err(bad("a flag is neither 0 nor 1"));
        }
        Ok(v.into_iter().map(|b| b == 1).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_written() {
        let mut w = Writer::new(Vec::new());
        w.u8(7).unwrap();
        w.bool(true).unwrap();
        w.u32(u32::MAX).unwrap();
        w.i64(-5).unwrap();
        w.f32(0.25).unwrap();
        w.f64(std::f64::consts::PI).unwrap();
        w.str("héllo").unwrap();
        let many: Vec<f64> = (0..20_000).map(|i| f64::from(i) / 3.0).collect();
        w.f64s(&many).unwrap();
        w.u32s(&[1, 2, 3]).unwrap();
        w.i64s(&[i64::MIN, 0]).unwrap();
        w.bools(&[true, false]).unwrap();
        let written = w.written();
        let bytes = w.into_inner();
        assert_eq!(written, bytes.len() as u64);
        let mut r = Reader::new(bytes.as_slice(), written);
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.bool().unwrap());
        assert_eq!(r.u32().unwrap(), u32::MAX);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.f32().unwrap(), 0.25);
        assert_eq!(r.f64().unwrap(), std::f64::consts::PI);
        assert_eq!(r.string().unwrap(), "héllo");
        assert_eq!(r.f64s().unwrap(), many);
        assert_eq!(r.u32s().unwrap(), vec![1, 2, 3]);
        assert_eq!(r.i64s().unwrap(), vec![i64::MIN, 0]);
        assert_eq!(r.bools().unwrap(), vec![true, false]);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn a_length_beyond_the_stream_is_an_error_not_an_allocation() {
        let mut w = Writer::new(Vec::new());
        w.len(usize::MAX / 2).unwrap();
        let bytes = w.into_inner();
        let mut r = Reader::new(bytes.as_slice(), bytes.len() as u64);
        assert!(matches!(r.f64s(), Err(SnapshotError::Format(_))));
        let mut short = Reader::new(&bytes[..3], 3);
        assert!(short.u64().is_err());
    }
}
