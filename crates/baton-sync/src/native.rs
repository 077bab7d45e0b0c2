//! Native-byte helper of the sync engine: reading a whole agent file
//! (plain or `.zst`), a missing one as `None`.

use crate::error::{ClientError, io_err};
use std::path::Path;

/// Read a native file (decompressing `.zst`); a missing file reads as `None`.
pub fn read_native(path: &Path) -> Result<Option<Vec<u8>>, ClientError> {
    match baton_native::files::read_whole(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}
