# CUDA backend: the qcodec::cuda target (headers under include/qcodec/cuda, used from .cu files),
# its tests and benchmarks. On by default when a CUDA compiler is found; no GPU is needed to
# build, and the tests skip with a message where no device is present.
set(qcodec_cuda_default OFF)
if(NOT DEFINED QCODEC_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(qcodec_cuda_default ON)
  endif()
endif()
option(QCODEC_CUDA "Build the CUDA backend's target, tests and benchmarks" ${qcodec_cuda_default})
if(NOT QCODEC_CUDA)
  return()
endif()

# Hopper (H100/H200) unless the user chooses: -DCMAKE_CUDA_ARCHITECTURES=80;90 etc.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
message(STATUS "qcodec: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")

add_library(qcodec_cuda INTERFACE)
add_library(qcodec::cuda ALIAS qcodec_cuda)
target_link_libraries(qcodec_cuda INTERFACE qcodec CUDA::cudart CUDA::cublas)
# Eigen (behind qcodec's headers) calls constexpr host functions from __host__ __device__ code.
target_compile_options(qcodec_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
# CMake < 3.26 does not know C++20 for nvcc: pass the flag itself.
if("cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
  target_compile_features(qcodec_cuda INTERFACE cuda_std_20)
else()
  target_compile_options(qcodec_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
endif()

# Installed beside qcodec::qcodec in its own export set: the package config adds qcodec::cuda
# when the consumer's CUDA toolkit is found (find_package(qcodec COMPONENTS cuda) requires it).
if(QCODEC_INSTALL)
  set_target_properties(qcodec_cuda PROPERTIES EXPORT_NAME cuda)
  install(TARGETS qcodec_cuda EXPORT qcodecCudaTargets)
  install(EXPORT qcodecCudaTargets NAMESPACE qcodec:: DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/qcodec)
endif()

# Compile settings of qcodec's own CUDA programs: host-compiler warnings go through -Xcompiler.
add_library(qcodec_cuda_build_settings INTERFACE)
target_compile_options(qcodec_cuda_build_settings INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
