# Compile settings of qcodec's own programs (tests, benchmarks, examples); consumers of the
# header-only library choose their own flags.
add_library(qcodec_build_settings INTERFACE)
target_compile_options(qcodec_build_settings INTERFACE -Wall -Wextra -Wpedantic
  # GCC 12 reports its own AVX-512 intrinsics as maybe-uninitialized when inlined into Eigen,
  # and std::string concatenation, inlined deep enough, as overlapping memcpy (GCC PR 105329).
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized -Wno-restrict>)

if(QCODEC_SIMD STREQUAL "dispatch")
  # The compiler's default baseline; the kernels of every target are compiled in regardless.
elseif(QCODEC_SIMD STREQUAL "native")
  target_compile_options(qcodec_build_settings INTERFACE -march=native)
elseif(QCODEC_SIMD STREQUAL "avx2")
  target_compile_options(qcodec_build_settings INTERFACE -mavx2 -mfma -mf16c)
  target_compile_definitions(qcodec_build_settings INTERFACE QCODEC_USE_AVX512=0)
elseif(QCODEC_SIMD STREQUAL "avx512")
  target_compile_options(qcodec_build_settings INTERFACE
    -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512vbmi)
elseif(QCODEC_SIMD STREQUAL "none")
  target_compile_definitions(qcodec_build_settings INTERFACE QCODEC_USE_AVX2=0 QCODEC_USE_AVX512=0)
else()
  message(FATAL_ERROR "QCODEC_SIMD must be dispatch, native, avx2, avx512 or none (got '${QCODEC_SIMD}')")
endif()
message(STATUS "qcodec: SIMD targets of tests, benchmarks and examples: ${QCODEC_SIMD}")

find_package(OpenMP COMPONENTS CXX)
if(OpenMP_CXX_FOUND)
  target_link_libraries(qcodec_build_settings INTERFACE OpenMP::OpenMP_CXX)
endif()

# Synthetic LLM-like weights shared by the examples, tests and benchmarks.
add_library(qcodec_examples_support INTERFACE)
target_include_directories(qcodec_examples_support INTERFACE ${PROJECT_SOURCE_DIR}/examples/support)
