//! Builds the reference runtime's WebAssembly blob, the code of the benchmark's chain spec.

#[cfg(feature = "std")]
fn main() {
	substrate_wasm_builder::WasmBuilder::build_using_defaults();
}

/// The wasm builder is deactivated when compiling for wasm itself.
#[cfg(not(feature = "std"))]
fn main() {}
