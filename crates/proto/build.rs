//! Compiles `proto/tocsin/v1/*.proto` with the `protoc` shipped by
//! `protoc-bin-vendored`, so a fresh machine needs no system protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let proto = |name: &str| root.join(format!("tocsin/v1/{name}.proto"));
    let protos: Vec<PathBuf> = ["envelope", "alert", "federation", "operator", "watchlist"]
        .into_iter()
        .map(proto)
        .collect();
    for file in &protos {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("tocsin_v1_descriptor.bin"))
        .compile_with_config(config()?, &protos, std::slice::from_ref(&root))?;

    // The watchlist services again, with every message the one generated
    // above except a screen's responses, which are the hand-written `wire`
    // forms: the same bytes on the wire, but the node puts in each match
    // the entry it already holds encoded instead of decoding it only for
    // it to be encoded again, and a client that does not look at the
    // entries (the bench's load generator) need not decode them.
    let desk = out_dir.join("desk");
    std::fs::create_dir_all(&desk)?;
    tonic_prost_build::configure()
        .out_dir(&desk)
        .extern_path(".tocsin.v1", "crate::pb")
        .extern_path(".tocsin.v1.ScreenResponse", "crate::wire::ScreenResponse")
        .extern_path(
            ".tocsin.v1.ScreenBatchResponse",
            "crate::wire::ScreenBatchResponse",
        )
        .compile_with_config(
            config()?,
            &[proto("watchlist")],
            std::slice::from_ref(&root),
        )?;
    Ok(())
}

/// prost's settings for both compiles: the vendored protoc, proto3 optional.
fn config() -> Result<tonic_prost_build::Config, Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.protoc_arg("--experimental_allow_proto3_optional");
    Ok(config)
}
