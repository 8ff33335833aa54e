//! Compiles `proto/scorecard/v1/*.proto` into Rust (tonic + prost) and writes the
//! descriptor set that server reflection serves. protoc comes from
//! `protoc-bin-vendored` unless `PROTOC` names one, so a bare machine builds.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos: [PathBuf; 8] = [
        "proto/scorecard/v1/common.proto".into(),
        "proto/scorecard/v1/rubric.proto".into(),
        "proto/scorecard/v1/hiring.proto".into(),
        "proto/scorecard/v1/scorecard.proto".into(),
        "proto/scorecard/v1/calibration.proto".into(),
        "proto/scorecard/v1/events.proto".into(),
        "proto/scorecard/v1/audit.proto".into(),
        "proto/scorecard/v1/compliance.proto".into(),
    ];
    // tonic-prost-build 0.14 does not print these itself.
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds migrations/ at compile time.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=PROTOC");

    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the
        // environment concurrently.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let well_known = protoc_bin_vendored::include_path()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("scorecard_descriptor.bin"))
        .compile_protos(&protos, &[PathBuf::from("proto"), well_known])?;
    Ok(())
}
