//! numpy's `.npy` records: the header numpy writes, byte for byte, and a
//! strict reader for it.
//!
//! A record is the magic `\x93NUMPY`, a version, a little-endian header
//! length, a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces to a multiple of 64 bytes and ended by a newline, then the data in
//! C order. numpy 2 also pads the dict with spare spaces so that the first
//! axis can grow in place; that is copied here too.

use std::io::{self, Read, Write};

use crate::array::DType;
use crate::error::{Error, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy's `ARRAY_ALIGN`.
const ALIGN: usize = 64;
/// numpy's `GROWTH_AXIS_MAX_DIGITS`.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
/// The longest header read, as numpy's `max_header_size` guards `np.load`:
/// longer headers are refused before anything is allocated for them.
const MAX_HEADER_LEN: usize = 1 << 16;

/// What a record holds: its dtype descr and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// numpy's dtype string, such as `<f4` or `|b1`.
    pub descr: String,
    /// The shape; empty for a 0-d record.
    pub shape: Vec<usize>,
}

impl NpyHeader {
    /// The number of elements, or an error if it overflows.
    pub fn elem_count(&self) -> Result<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| {
            n.checked_mul(d).ok_or_else(|| {
                Error::invalid(format!(
                    "the record's shape {:?} has more elements than fit in memory; the file \
                     is corrupt",
                    self.shape
                ))
            })
        })
    }

    /// The number of data bytes, or an error if it overflows.
    pub fn data_len(&self) -> Result<usize> {
        let item = descr_itemsize(&self.descr)?;
        self.elem_count()?.checked_mul(item).ok_or_else(|| {
            Error::invalid(format!(
                "the record's shape {:?} has more bytes than fit in memory; the file is corrupt",
                self.shape
            ))
        })
    }
}

/// numpy's descr for an array dtype.
pub fn dtype_descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
        DType::U8 => "|u1",
    }
}

/// The size in bytes of one element of a descr solstice reads.
fn descr_itemsize(descr: &str) -> Result<usize> {
    Ok(match descr {
        "|b1" | "|u1" | "|i1" => 1,
        "<i2" | "<u2" | "<f2" | "<V2" => 2,
        "<i4" | "<u4" | "<f4" => 4,
        "<i8" | "<u8" | "<f8" => 8,
        other => {
            return Err(Error::dtype(format!(
                "the record's dtype {other:?} is not one solstice reads (little-endian \
                 bool, integers and f2/f4/f8)"
            )));
        }
    })
}

/// Writes the header numpy's `np.save` writes for `descr` and `shape`.
pub fn write_header(w: &mut dyn Write, descr: &str, shape: &[usize]) -> io::Result<()> {
    w.write_all(&header_bytes(descr, shape))
}

/// The header numpy's `np.save` writes, as bytes.
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_repr = match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_repr}, }}");
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // Version 1.0 has a 2-byte length; numpy moves to 2.0 (4 bytes) only
    // where the header does not fit, and so does this.
    let hlen = dict.len() + 1;
    let pad_for = |len_bytes: usize| ALIGN - (MAGIC.len() + 2 + len_bytes + hlen) % ALIGN;
    let (version, len_bytes) = if hlen + pad_for(2) <= usize::from(u16::MAX) {
        (1u8, 2)
    } else {
        (2u8, 4)
    };
    let pad = pad_for(len_bytes);
    let total = hlen + pad;
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + len_bytes + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(total as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(total as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

/// Reads one record's header. `Ok(None)` where the stream ends cleanly
/// before the record begins.
pub fn read_header(r: &mut dyn Read) -> Result<Option<NpyHeader>> {
    let mut magic = [0u8; 8];
    let got = read_up_to(r, &mut magic)?;
    if got == 0 {
        return Ok(None);
    }
    if got < magic.len() {
        return Err(truncated("the record's magic"));
    }
    if &magic[..6] != MAGIC {
        return Err(Error::invalid(format!(
            "the record does not start with numpy's magic \\x93NUMPY (found {:?}); the file is \
             not an .eqx/.npy stream or is corrupt",
            String::from_utf8_lossy(&magic[..6])
        )));
    }
    let (major, minor) = (magic[6], magic[7]);
    let len = match (major, minor) {
        (1, 0) => {
            let mut b = [0u8; 2];
            read_exact(r, &mut b, "the record's header length")?;
            usize::from(u16::from_le_bytes(b))
        }
        (2 | 3, 0) => {
            let mut b = [0u8; 4];
            read_exact(r, &mut b, "the record's header length")?;
            usize::try_from(u32::from_le_bytes(b)).unwrap_or(usize::MAX)
        }
        _ => {
            return Err(Error::invalid(format!(
                "the record has .npy format version {major}.{minor}; solstice reads 1.0, 2.0 \
                 and 3.0"
            )));
        }
    };
    if len > MAX_HEADER_LEN {
        return Err(Error::invalid(format!(
            "the record's header is {len} bytes long, more than the {MAX_HEADER_LEN} solstice \
             accepts; the file is corrupt"
        )));
    }
    let text = read_bytes(r, len, "the record's header")?;
    let text = if major == 3 {
        String::from_utf8(text)
            .map_err(|_| Error::invalid("the record's header is not valid UTF-8"))?
    } else if text.is_ascii() {
        // Latin-1 in numpy's words; anything past ASCII is not a header
        // numpy writes.
        String::from_utf8(text).expect("ASCII is UTF-8")
    } else {
        return Err(Error::invalid("the record's header is not ASCII text"));
    };
    parse_dict(&text).map(Some)
}

/// Reads exactly `len` bytes of record data. The buffer grows as bytes
/// arrive, so a length larger than the stream allocates no more than the
/// stream holds.
pub fn read_data(r: &mut dyn Read, len: usize) -> Result<Vec<u8>> {
    read_bytes(r, len, "the record's data")
}

fn read_bytes(r: &mut dyn Read, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(1 << 20));
    r.take(len as u64)
        .read_to_end(&mut out)
        .map_err(|e| io_error(what, e))?;
    if out.len() < len {
        return Err(truncated(what));
    }
    Ok(out)
}

/// Fills as much of `buf` as the stream holds.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error("the record", e)),
        }
    }
    Ok(n)
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], what: &str) -> Result<()> {
    if read_up_to(r, buf)? < buf.len() {
        return Err(truncated(what));
    }
    Ok(())
}

fn truncated(what: &str) -> Error {
    Error::invalid(format!(
        "the file ends in the middle of {what}: it is truncated"
    ))
}

pub(crate) fn io_error(what: &str, e: io::Error) -> Error {
    Error::from(e).context(format!("reading {what}"))
}

/// Parses numpy's header dict: exactly the keys `descr`, `fortran_order`
/// and `shape`, in any order.
fn parse_dict(text: &str) -> Result<NpyHeader> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "the record's header {:?} is not a numpy header: {why}",
            text.trim_end()
        ))
    };
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')
        .map_err(|_| bad("it does not start with '{'"))?;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p
            .string()
            .map_err(|_| bad("a key is not a quoted string"))?;
        p.skip_ws();
        p.expect(b':')
            .map_err(|_| bad("a key is not followed by ':'"))?;
        p.skip_ws();
        match key.as_str() {
            "descr" if descr.is_none() => {
                descr = Some(p.string().map_err(|_| {
                    bad("'descr' is not a string (structured dtypes are not supported)")
                })?)
            }
            "fortran_order" if fortran.is_none() => {
                fortran = Some(
                    p.boolean()
                        .map_err(|_| bad("'fortran_order' is not a bool"))?,
                )
            }
            "shape" if shape.is_none() => {
                shape = Some(
                    p.tuple()
                        .map_err(|_| bad("'shape' is not a tuple of sizes"))?,
                )
            }
            other => return Err(bad(&format!("unexpected or repeated key {other:?}"))),
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            p.expect(b'}')
                .map_err(|_| bad("entries are not separated by ','"))?;
            break;
        }
    }
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(bad("text follows the dict"));
    }
    let (Some(descr), Some(fortran), Some(shape)) = (descr, fortran, shape) else {
        return Err(bad("it lacks one of 'descr', 'fortran_order' and 'shape'"));
    };
    if fortran {
        return Err(Error::invalid(
            "the record is in Fortran order, which solstice does not read; save it with \
             np.ascontiguousarray",
        ));
    }
    let header = NpyHeader { descr, shape };
    header.data_len()?;
    Ok(header)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), ()> {
        if self.eat(c) { Ok(()) } else { Err(()) }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn string(&mut self) -> std::result::Result<String, ()> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(()),
        };
        self.i += 1;
        let start = self.i;
        while self.peek().ok_or(())? != quote {
            // numpy's descrs and keys never hold escapes.
            if self.peek() == Some(b'\\') {
                return Err(());
            }
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| ())?;
        self.i += 1;
        Ok(text.to_string())
    }

    fn boolean(&mut self) -> std::result::Result<bool, ()> {
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(value);
            }
        }
        Err(())
    }

    fn tuple(&mut self) -> std::result::Result<Vec<usize>, ()> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| ())?;
            dims.push(digits.parse::<usize>().map_err(|_| ())?);
            // Python 2's long suffix, as old numpy files have.
            self.eat(b'L');
            self.skip_ws();
            if !self.eat(b',') {
                self.skip_ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        for shape in [vec![], vec![3], vec![4, 4], vec![0, 3], vec![2, 3, 4, 5]] {
            let bytes = header_bytes("<f4", &shape);
            assert_eq!(bytes.len() % ALIGN, 0);
            let h = read_header(&mut &bytes[..]).unwrap().unwrap();
            assert_eq!(h.shape, shape);
            assert_eq!(h.descr, "<f4");
        }
    }

    #[test]
    fn hostile_headers_are_errors() {
        let cases: [&[u8]; 6] = [
            b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'",
            b"\x93NUMPY\x09\x00\x00\x00",
            b"\x93NUMPY\x01\x00\xff\xff{}",
            b"\x93NUMPZ\x01\x00\x00\x00",
            b"\x93NUMPY\x01\x00\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
            b"\x93NUMP",
        ];
        for case in cases {
            assert!(read_header(&mut &case[..]).is_err(), "{case:?}");
        }
    }
}
