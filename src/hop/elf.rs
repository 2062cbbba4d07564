//! Is a binary static? A dynamically linked ELF executable names its loader in a `PT_INTERP`
//! program header; a static one (the musl build) has none and runs on any x86_64 Linux, so it is
//! the one the hop may copy to another host.

use std::path::Path;

const PT_INTERP: u32 = 3;

/// Why a file is not a binary that can be copied to another host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("truncated ELF header")]
    Truncated,
    #[error("dynamically linked (its loader is {0}): it needs this host's libc")]
    Dynamic(String),
}

/// Ok when `bytes` is an ELF file with no program interpreter (statically linked).
pub fn check_static(bytes: &[u8]) -> Result<(), ElfError> {
    if bytes.len() < 16 || &bytes[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let is64 = match bytes[4] {
        1 => false,
        2 => true,
        _ => return Err(ElfError::NotElf),
    };
    let le = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err(ElfError::NotElf),
    };
    let rd = |off: usize, n: usize| -> Result<u64, ElfError> {
        let b = bytes.get(off..off + n).ok_or(ElfError::Truncated)?;
        let mut v: u64 = 0;
        for i in 0..n {
            let byte = if le { b[n - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    };
    let (phoff, phentsize, phnum) = if is64 {
        (rd(0x20, 8)?, rd(0x36, 2)?, rd(0x38, 2)?)
    } else {
        (rd(0x1c, 4)?, rd(0x2a, 2)?, rd(0x2c, 2)?)
    };
    let (phoff, phentsize) = (
        usize::try_from(phoff).map_err(|_| ElfError::Truncated)?,
        usize::try_from(phentsize).map_err(|_| ElfError::Truncated)?,
    );
    for i in 0..usize::try_from(phnum).unwrap_or(0) {
        let at = phoff
            .checked_add(i.checked_mul(phentsize).ok_or(ElfError::Truncated)?)
            .ok_or(ElfError::Truncated)?;
        if rd(at, 4)? as u32 == PT_INTERP {
            let (off, size) = if is64 {
                (rd(at + 8, 8)?, rd(at + 32, 8)?)
            } else {
                (rd(at + 4, 4)?, rd(at + 16, 4)?)
            };
            let interp = usize::try_from(off)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(o, s)| bytes.get(o..o.checked_add(s)?))
                .map_or_else(
                    || "an interpreter".into(),
                    |b| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned(),
                );
            return Err(ElfError::Dynamic(interp));
        }
    }
    Ok(())
}

/// [`check_static`] on a file.
pub fn check_static_file(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    check_static(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 header with the given program header types.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * types.len() + 32];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        let interp_at = 64 + 56 * types.len();
        b[interp_at..interp_at + 10].copy_from_slice(b"/lib/ld.so");
        for (i, t) in types.iter().enumerate() {
            let at = 64 + 56 * i;
            b[at..at + 4].copy_from_slice(&t.to_le_bytes());
            b[at + 8..at + 16].copy_from_slice(&(interp_at as u64).to_le_bytes());
            b[at + 32..at + 40].copy_from_slice(&11u64.to_le_bytes());
        }
        b
    }

    #[test]
    fn static_has_no_interp() {
        assert_eq!(check_static(&elf64(&[1, 1, 4])), Ok(()));
        assert_eq!(
            check_static(&elf64(&[6, PT_INTERP, 1])),
            Err(ElfError::Dynamic("/lib/ld.so".into()))
        );
        assert_eq!(check_static(b"#!/bin/sh\n"), Err(ElfError::NotElf));
        let mut cut = elf64(&[1, 1]);
        cut.truncate(80);
        assert_eq!(check_static(&cut), Err(ElfError::Truncated));
    }

    #[test]
    fn a_system_binary_is_dynamic() {
        // Debian's /bin/sh (dash) is dynamically linked.
        if let Ok(b) = std::fs::read("/bin/sh") {
            assert!(matches!(check_static(&b), Err(ElfError::Dynamic(_))));
        }
    }
}
