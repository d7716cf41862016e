//! Folders drill must write into, proved writable before anything starts.

use std::path::Path;

/// Creates `dir` (and its parents) and proves a file can be written in it,
/// by writing and removing a probe file. The probe is named after this
/// process, so drills started at the same instant in the same folder (two
/// runs from one working directory, the same history volume) never remove
/// each other's probe and fail a check the folder passes.
pub(crate) fn prove_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".drill-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_folder_is_created_and_left_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prove_writable(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    /// Another drill's probe in the folder, as when two start together:
    /// ours neither trips on it nor removes it.
    #[test]
    fn another_drills_probe_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let theirs = tmp.path().join(".drill-write-probe-1");
        std::fs::write(&theirs, b"").unwrap();
        prove_writable(tmp.path()).unwrap();
        assert!(theirs.exists());
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(prove_writable(&file).is_err());
    }
}
