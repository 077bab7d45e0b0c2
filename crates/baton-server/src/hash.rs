//! A SHA-256 whose running state can be saved and resumed, so the server
//! knows the hash of any stream prefix that ends at an append boundary
//! without re-reading the bytes before it.

use sha2::digest::generic_array::GenericArray;

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Running SHA-256 state after some number of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningSha256 {
    h: [u32; 8],
    len: u64,
    buf: Vec<u8>,
}

impl Default for RunningSha256 {
    fn default() -> Self {
        Self {
            h: IV,
            len: 0,
            buf: Vec::with_capacity(64),
        }
    }
}

impl RunningSha256 {
    /// State after zero bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no byte was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hash more bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.buf.is_empty() {
            let take = (64 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.buf);
            sha2::compress256(&mut self.h, &[*GenericArray::from_slice(&block)]);
            self.buf = block;
            self.buf.clear();
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            sha2::compress256(&mut self.h, &[*GenericArray::from_slice(block)]);
        }
        self.buf.extend_from_slice(blocks.remainder());
    }

    /// The digest of the bytes hashed so far (the state is left unchanged).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = self.h;
        let mut tail = self.buf.clone();
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&(self.len.wrapping_mul(8)).to_be_bytes());
        for block in tail.chunks_exact(64) {
            sha2::compress256(&mut h, &[*GenericArray::from_slice(block)]);
        }
        let mut out = [0u8; 32];
        for (i, word) in h.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// The digest as lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(self.digest())
    }

    /// Serialize: 32 bytes of state, 8 bytes of length, then the partial block.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + self.buf.len());
        for word in self.h {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.buf);
        out
    }

    /// Parse what [`RunningSha256::to_bytes`] wrote; `None` when inconsistent.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 40 || bytes.len() > 40 + 63 {
            return None;
        }
        let mut h = [0u32; 8];
        for (i, word) in h.iter_mut().enumerate() {
            *word = u32::from_be_bytes(bytes[i * 4..i * 4 + 4].try_into().ok()?);
        }
        let len = u64::from_be_bytes(bytes[32..40].try_into().ok()?);
        let buf = bytes[40..].to_vec();
        if (len % 64) as usize != buf.len() {
            return None;
        }
        Some(Self { h, len, buf })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn matches_sha2_for_every_split_and_survives_serialization() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0usize, 1, 55, 56, 63, 64, 65, 127, 128, 500, 999, 1000] {
            let mut h = RunningSha256::new();
            h.update(&data[..split]);
            assert_eq!(
                h.digest().as_slice(),
                sha2::Sha256::digest(&data[..split]).as_slice()
            );
            let mut resumed = RunningSha256::from_bytes(&h.to_bytes()).unwrap();
            for piece in data[split..].chunks(37) {
                resumed.update(piece);
            }
            assert_eq!(
                resumed.digest().as_slice(),
                sha2::Sha256::digest(&data).as_slice()
            );
            assert_eq!(resumed.len(), 1000);
        }
        assert_eq!(RunningSha256::new().hex(), baton_protocol::EMPTY_SHA256);
        assert!(RunningSha256::from_bytes(&[0; 39]).is_none());
        assert!(RunningSha256::from_bytes(&[0; 41]).is_none());
    }
}
