# Runs COMMAND (arguments joined by "@@") and passes only when it exits non-zero and its
# output matches EXPECT.
string(REPLACE "@@" ";" COMMAND "${COMMAND}")
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit, got 0\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "output does not match '${EXPECT}' (exit ${rc})\nstdout: ${out}\nstderr: ${err}")
endif()
if(DEFINED MUST_NOT_EXIST AND EXISTS "${MUST_NOT_EXIST}")
  message(FATAL_ERROR "${MUST_NOT_EXIST} exists after a failed run")
endif()
message(STATUS "exit ${rc}, output matches '${EXPECT}'")
