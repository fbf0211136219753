# qcodec-quantize --in-place, in a fresh directory DIR holding a copy of MODEL: without
# --in-place, OUTPUT == INPUT is refused and the file stays as it was; with --in-place, a run
# that fails part-way (--max-rel-err missed) leaves the file byte for byte as it was and no
# temporary file beside it; a run that succeeds replaces the file with the quantized model
# (qcodec-inspect lists its encoded tensors), by INPUT OUTPUT and by INPUT alone.
# QUANTIZE, INSPECT, MODEL: the tools and the input.
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
set(file "${DIR}/model.safetensors")
file(COPY_FILE "${MODEL}" "${file}")
file(SHA256 "${file}" original)

function(run expect_exit expect)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if((expect_exit STREQUAL "zero" AND NOT rc EQUAL 0) OR (expect_exit STREQUAL "nonzero" AND rc EQUAL 0))
    message(FATAL_ERROR "'${ARGN}': expected a ${expect_exit} exit, got ${rc}\n${out}\n${err}")
  endif()
  if(NOT "${out}${err}" MATCHES "${expect}")
    message(FATAL_ERROR "'${ARGN}': output does not match '${expect}'\n${out}\n${err}")
  endif()
  message(STATUS "as expected (exit ${rc}): ${ARGN}")
endfunction()

function(expect_only_the_model why)
  file(GLOB entries RELATIVE "${DIR}" "${DIR}/*" "${DIR}/.*")
  if(NOT entries STREQUAL "model.safetensors")
    message(FATAL_ERROR "${why}: the directory holds '${entries}', expected only model.safetensors")
  endif()
endfunction()

function(expect_unchanged why)
  file(SHA256 "${file}" now)
  if(NOT now STREQUAL original)
    message(FATAL_ERROR "${why}: the model file changed")
  endif()
  expect_only_the_model("${why}")
endfunction()

run(nonzero "OUTPUT '.*model.safetensors' is INPUT.*--in-place" "${QUANTIZE}" "${file}" "${file}" --quiet)
expect_unchanged("refused without --in-place")
run(nonzero "exceeds the bound 1e-09" "${QUANTIZE}" "${file}" "${file}" --in-place --max-rel-err 1e-9 --quiet)
expect_unchanged("a failed --in-place run")

run(zero "verify: 16 tensors checked, 0 bad" "${QUANTIZE}" "${file}" "${file}" --in-place --verify --quiet)
expect_only_the_model("after --in-place")
file(SHA256 "${file}" quantized)
if(quantized STREQUAL original)
  message(FATAL_ERROR "--in-place succeeded but the model file is unchanged")
endif()
run(zero "model.layers.1.mlp.down_proj.weight +int8 +\\[160,330\\]" "${INSPECT}" "${file}" --verify)
# Quantized already: a second --in-place run is refused and changes nothing.
run(nonzero "already holds qcodec-encoded tensors" "${QUANTIZE}" "${file}" --in-place --quiet)
file(SHA256 "${file}" again)
if(NOT again STREQUAL quantized)
  message(FATAL_ERROR "a refused --in-place run changed the quantized file")
endif()

# INPUT alone with --in-place.
file(COPY_FILE "${MODEL}" "${file}")
run(zero "tensors quantized with int4-g128" "${QUANTIZE}" "${file}" --in-place --codec=int4-g128 --quiet)
run(zero "model.layers.1.mlp.down_proj.weight +int4-g128" "${INSPECT}" "${file}")
expect_only_the_model("after --in-place with INPUT alone")
file(REMOVE_RECURSE "${DIR}")
message(STATUS "--in-place: refused without it, atomic with it")
