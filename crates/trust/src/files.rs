//! Reading PEM files and writing secrets safely.

use std::fs;
use std::io::Write;
use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// Reads every certificate in a PEM file; an empty file is an error.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    read_pem_blocks(path, "certificate", "CERTIFICATE")
}

/// Reads every `label` block of a PEM file (a `kind` of object); an empty
/// file is an error.
pub(crate) fn read_pem_blocks<T: PemObject>(
    path: &Path,
    kind: &str,
    label: &str,
) -> Result<Vec<T>, Error> {
    parse_pem_blocks(&fs::read(path).map_err(io(path))?, path, kind, label)
}

/// [`read_pem_blocks`] on the contents of `path`, already read.
pub(crate) fn parse_pem_blocks<T: PemObject>(
    data: &[u8],
    path: &Path,
    kind: &str,
    label: &str,
) -> Result<Vec<T>, Error> {
    let blocks: Vec<T> = T::pem_slice_iter(data)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Pem {
            path: path.display().to_string(),
            what: format!("not a PEM {kind} file ({e})"),
        })?;
    if blocks.is_empty() {
        return Err(Error::Pem {
            path: path.display().to_string(),
            what: format!("no {label} block found"),
        });
    }
    Ok(blocks)
}

/// Reads a private key, refusing a file that others can read.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    check_key_permissions(path)?;
    parse_private_key(&fs::read(path).map_err(io(path))?, path)
}

/// The private key in the contents of `path`, already read.
pub(crate) fn parse_private_key(data: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(data).map_err(|e| Error::Pem {
        path: path.display().to_string(),
        what: format!("no usable PRIVATE KEY block ({e})"),
    })
}

/// Fails if `path` is readable or writable by group or others.
pub fn check_key_permissions(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyPermissions {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    Ok(())
}

/// Writes `contents` to a new file beside `path` with `mode`, then renames
/// it over `path`: a reader (a node reloading its certificates) sees the
/// old file or the new one, never half of one.
fn write_replacing(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(contents).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Writes a secret with mode 0600 from the moment it exists, replacing any
/// previous file at once.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<(), Error> {
    write_replacing(path, contents, 0o600)
}

/// Writes a public file (certificate, configuration, CRL), mode 0644,
/// replacing any previous file at once.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), Error> {
    write_replacing(path, contents, 0o644)
}

/// Creates a directory and its parents.
pub fn create_dir(path: &Path) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_private_and_lax_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        write_secret(&key, b"secret").unwrap();
        assert!(check_key_permissions(&key).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
            fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
            let err = check_key_permissions(&key).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }
}
