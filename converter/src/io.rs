//! Writing the CLI's output files safely: an output never replaces one of the command's inputs,
//! and it appears at its path whole or not at all.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;

/// Whether `a` and `b` name the same existing file, however spelled: `./m` and `m`, a symlink
/// and its target, two hard links. False when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (ma.dev(), ma.ino()) == (mb.dev(), mb.ino()) {
            return true;
        }
    }
    #[cfg(not(unix))]
    let _ = (ma, mb);
    matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(ca), Ok(cb)) if ca == cb)
}

/// Fails, naming both paths, if `output` is the same file as any of `inputs`.
pub fn check_output_is_not_an_input(output: &Path, inputs: &[&Path]) -> Result<(), Error> {
    match inputs.iter().find(|i| same_file(output, i)) {
        Some(input) => Err(Error::new(format!(
            "output {} is the input {}: refusing to overwrite it",
            output.display(),
            input.display()
        ))),
        None => Ok(()),
    }
}

/// Distinguishes the temporary files of one process.
static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary file next to the target, removed on drop unless renamed over the target.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    Error::new(format!("cannot {what} {}: {e}", path.display()))
}

/// Creates `.<name>.tmp-<pid>-<n>` in `target`'s directory.
fn create_temp(target: &Path) -> Result<(TempFile, File), Error> {
    let name = target.file_name().ok_or_else(|| {
        Error::new(format!(
            "cannot write {}: not a file name",
            target.display()
        ))
    })?;
    let dir = target.parent().unwrap_or(Path::new(""));
    loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let path = dir.join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((TempFile { path, keep: false }, f)),
            // A leftover of a killed process with our pid: take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::new(format!(
                    "cannot write {}: cannot create a temporary file in its directory: {e}",
                    target.display()
                )))
            }
        }
    }
}

/// Writes `target` atomically: `write` fills a buffered temporary file in the same directory,
/// which is flushed, synced and renamed over `target`. If anything fails, the temporary file is
/// removed and an existing `target` is left as it was. A `target` that is a symlink is resolved,
/// so the file it points to is replaced, not the link.
pub fn write_atomically<T>(
    target: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, Error>,
) -> Result<T, Error> {
    let target = match fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf())
        }
        _ => target.to_path_buf(),
    };
    let (mut tmp, file) = create_temp(&target)?;
    let mut w = BufWriter::new(file);
    let value = write(&mut w)?;
    let file = w
        .into_inner()
        .map_err(|e| io_err("write", &target, e.into_error()))?;
    if let Ok(m) = fs::metadata(&target) {
        // Keep an existing target's permissions.
        file.set_permissions(m.permissions())
            .map_err(|e| io_err("set the permissions of", &tmp.path, e))?;
    }
    file.sync_all().map_err(|e| io_err("write", &target, e))?;
    drop(file);
    fs::rename(&tmp.path, &target).map_err(|e| io_err("replace", &target, e))?;
    tmp.keep = true;
    #[cfg(unix)]
    {
        // Make the rename itself durable.
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
        File::open(dir.unwrap_or(Path::new(".")))
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("sync the directory of", &target, e))?;
    }
    Ok(value)
}

/// `runnel convert`: reads the model file `model`, converts it with `opts` — or, given
/// `calibrate` (an inputs file, as for `runnel run`), into the integer-only mode calibrated on
/// those inputs — and writes the blob to `output` atomically, refusing an output that is one of
/// the inputs. Returns the conversion (blob and report) and the calibration. The CLI and the
/// Python package both call it.
pub fn convert_file(
    model: &Path,
    output: &Path,
    opts: &crate::ConvertOptions,
    calibrate: Option<&Path>,
) -> Result<(crate::Converted, Option<crate::integer::Calibration>), Error> {
    let mut inputs = vec![model];
    inputs.extend(calibrate);
    check_output_is_not_an_input(output, &inputs)?;
    let bytes = fs::read(model).map_err(|e| io_err("read", model, e))?;
    let cannot = |e: Error| Error::new(format!("cannot convert {}: {e}", model.display()));
    let (c, cal) = match calibrate {
        None => (crate::convert(&bytes, opts).map_err(cannot)?, None),
        Some(data) => {
            let raw = fs::read(data).map_err(|e| io_err("read", data, e))?;
            let inputs = crate::stream::read_inputs(&raw)?;
            let cal = crate::integer::Calibration::run(&bytes, &inputs).map_err(cannot)?;
            let c = crate::convert_integer(&bytes, &cal).map_err(cannot)?;
            (c, Some(cal))
        }
    };
    write_file_atomically(output, &c.blob)?;
    Ok((c, cal))
}

/// Writes `bytes` to `target` atomically (see [`write_atomically`]).
pub fn write_file_atomically(target: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomically(target, |w| {
        w.write_all(bytes).map_err(|e| io_err("write", target, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("runnel-io-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_target_and_leaves_no_temporary_file() {
        let d = dir("ok");
        let t = d.join("out.bin");
        fs::write(&t, b"old").unwrap();
        write_file_atomically(&t, b"new contents").unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"new contents");
        assert_eq!(entries(&d), ["out.bin"]);
    }

    #[test]
    fn a_failed_write_keeps_the_target_and_removes_the_temporary_file() {
        let d = dir("fail");
        let t = d.join("out.bin");
        fs::write(&t, b"good").unwrap();
        let r = write_atomically(&t, |w| {
            w.write_all(&[7; 100_000]).unwrap();
            Err::<(), _>(Error::new("midway"))
        });
        assert_eq!(r, Err(Error::new("midway")));
        assert_eq!(fs::read(&t).unwrap(), b"good");
        assert_eq!(entries(&d), ["out.bin"]);
    }

    #[cfg(unix)]
    #[test]
    fn same_file_sees_through_spellings_and_links() {
        let d = dir("same");
        let a = d.join("a");
        fs::write(&a, b"x").unwrap();
        fs::write(d.join("b"), b"x").unwrap();
        fs::hard_link(&a, d.join("hard")).unwrap();
        std::os::unix::fs::symlink(&a, d.join("sym")).unwrap();
        assert!(same_file(&a, &d.join("./a")));
        assert!(same_file(&a, &d.join("hard")));
        assert!(same_file(&a, &d.join("sym")));
        assert!(!same_file(&a, &d.join("b")));
        assert!(!same_file(&a, &d.join("missing")));
    }
}
