//! The paging state: our own versioned encoding of where a page stopped.
use super::*;

/// Where a page stopped: after `key` (and inside it, after `clustering`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PagingState {
    pub(super) key: DecoratedKey,
    pub(super) clustering: Option<Bytes>,
    /// Rows returned by earlier pages (for LIMIT).
    pub(super) emitted: u64,
    /// Rows of `key` returned so far (for PER PARTITION LIMIT).
    pub(super) in_partition: u64,
}

pub(super) const PAGING_STATE_VERSION: u8 = 1;

impl PagingState {
    pub(super) fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(PAGING_STATE_VERSION);
        out.put_i64(self.key.token);
        put_blob(&mut out, &self.key.key);
        match &self.clustering {
            Some(ck) => {
                out.put_u8(1);
                put_blob(&mut out, ck);
            }
            None => out.put_u8(0),
        }
        out.put_u64(self.emitted);
        out.put_u64(self.in_partition);
        out.freeze()
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Self, CqlError> {
        let bad = || invalid("Invalid value for the paging state");
        let mut input = bytes;
        if input.remaining() < 9 || input.get_u8() != PAGING_STATE_VERSION {
            return Err(bad());
        }
        let token = input.get_i64();
        let key = get_blob(&mut input).ok_or_else(bad)?;
        let clustering = match input.first() {
            Some(1) => {
                input.advance(1);
                Some(get_blob(&mut input).ok_or_else(bad)?)
            }
            Some(0) => {
                input.advance(1);
                None
            }
            _ => return Err(bad()),
        };
        if input.remaining() != 16 {
            return Err(bad());
        }
        Ok(PagingState {
            key: DecoratedKey::new(token, key),
            clustering,
            emitted: input.get_u64(),
            in_partition: input.get_u64(),
        })
    }
}

pub(super) fn put_blob(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(u32::try_from(b.len()).expect("keys are far shorter than 4 GiB"));
    out.put_slice(b);
}

pub(super) fn get_blob(input: &mut &[u8]) -> Option<Bytes> {
    if input.remaining() < 4 {
        return None;
    }
    let len = usize::try_from(input.get_u32()).ok()?;
    if input.remaining() < len {
        return None;
    }
    let b = Bytes::copy_from_slice(&input[..len]);
    input.advance(len);
    Some(b)
}
