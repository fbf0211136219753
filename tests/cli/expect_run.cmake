# Runs COMMAND (arguments joined by "@@") and passes only when its exit status is as EXIT says
# ("zero" or "nonzero") and its output matches EXPECT; with MUST_NOT_EXIST, only when that
# file does not exist afterwards (a failed run writes nothing).
string(REPLACE "@@" ";" COMMAND "${COMMAND}")
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(EXIT STREQUAL "zero" AND NOT rc EQUAL 0)
  message(FATAL_ERROR "expected exit 0, got ${rc}\nstdout: ${out}\nstderr: ${err}")
elseif(EXIT STREQUAL "nonzero" AND rc EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit, got 0\nstdout: ${out}\nstderr: ${err}")
elseif(NOT EXIT MATCHES "^(zero|nonzero)$")
  message(FATAL_ERROR "EXIT must be zero or nonzero, not '${EXIT}'")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT}")
  message(FATAL_ERROR "output does not match '${EXPECT}' (exit ${rc})\nstdout: ${out}\nstderr: ${err}")
endif()
if(DEFINED MUST_NOT_EXIST AND EXISTS "${MUST_NOT_EXIST}")
  message(FATAL_ERROR "${MUST_NOT_EXIST} exists after the run")
endif()
message(STATUS "exit ${rc}, output matches '${EXPECT}'")
