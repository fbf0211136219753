# Configures, builds and runs the consumer project (cmake -P script driven by ctest).
# MODE: find_package (installs the qcodec build tree QCODEC_BUILD_DIR into a prefix first) or
# add_subdirectory. WORK: scratch folder, recreated.
file(REMOVE_RECURSE ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}")
  endif()
endfunction()

set(configure_args -S ${CMAKE_CURRENT_LIST_DIR} -B ${WORK}/build -DQCODEC_README=${QCODEC_README}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DQCODEC_EXPECT_CUDA=${QCODEC_EXPECT_CUDA})
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} --install ${QCODEC_BUILD_DIR} --prefix ${WORK}/prefix)
  run(${CMAKE_COMMAND} ${configure_args} -DCMAKE_PREFIX_PATH=${WORK}/prefix)
else()
  run(${CMAKE_COMMAND} ${configure_args} -DQCODEC_SOURCE_DIR=${QCODEC_SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/readme_example)
run(${WORK}/build/io_example ${WORK}/io_example.safetensors)
