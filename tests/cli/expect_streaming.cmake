# The streaming writer (the default) and the in-memory one write the same bytes, on one
# thread or several: qcodec-quantize MODEL with CODEC --in-memory --jobs 1, and streaming with
# --jobs 1 and --jobs 3, must give identical files.
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})
foreach(mode "in_memory;--in-memory;--jobs;1" "stream_1;--jobs;1" "stream_3;--jobs;3")
  list(POP_FRONT mode name)
  execute_process(COMMAND ${QUANTIZE} ${MODEL} ${DIR}/${name}.safetensors --codec ${CODEC} --quiet ${mode}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}: exit ${rc}\n${out}${err}")
  endif()
endforeach()
foreach(name stream_1 stream_3)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${DIR}/in_memory.safetensors ${DIR}/${name}.safetensors
    RESULT_VARIABLE differ)
  if(differ)
    message(FATAL_ERROR "${name}.safetensors differs from in_memory.safetensors")
  endif()
endforeach()
file(GLOB left ${DIR}/.*)
if(left)
  message(FATAL_ERROR "temporary files left: ${left}")
endif()
message(STATUS "${CODEC}: streaming (1 and 3 threads) and in-memory outputs identical")
