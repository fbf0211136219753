# Tests of the at-rest parts: safetensors io, the Python client check, the CLI tools, the
# fuzz targets and the KV cache. Included from tests/CMakeLists.txt.
find_package(nlohmann_json 3 REQUIRED)

qcodec_add_test(test_safetensors test_safetensors.cpp)
target_link_libraries(test_safetensors PRIVATE nlohmann_json::nlohmann_json)
qcodec_add_test(test_grid test_grid.cpp)
target_link_libraries(test_grid PRIVATE nlohmann_json::nlohmann_json)
qcodec_add_test(test_load_linear test_load_linear.cpp)
target_link_libraries(test_load_linear PRIVATE nlohmann_json::nlohmann_json)
# The reference BERT engine of examples/bert/ on a tiny model written at test time.
qcodec_add_test(test_bert_engine test_bert_engine.cpp)
target_link_libraries(test_bert_engine PRIVATE nlohmann_json::nlohmann_json)
target_include_directories(test_bert_engine PRIVATE ${PROJECT_SOURCE_DIR}/examples)

# The Python client check: the reference `safetensors` package (PyPI) lists a file we wrote
# and a numpy decoder written from docs/safetensors_layout.md matches ours bit for bit. The
# virtual environment is created once per build directory; without PyPI the test is skipped.
option(QCODEC_CLIENT_CHECKS "Run the Python client check and the fuzz targets" ON)
add_executable(write_client_fixture python/write_client_fixture.cpp)
target_link_libraries(write_client_fixture PRIVATE qcodec::qcodec qcodec_build_settings
  qcodec_examples_support nlohmann_json::nlohmann_json)
if(QCODEC_CLIENT_CHECKS)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  add_test(NAME python.safetensors_client
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/python/run_client_check.sh
      ${CMAKE_BINARY_DIR}/python-venv $<TARGET_FILE:write_client_fixture>
      ${CMAKE_CURRENT_BINARY_DIR}/client_check)
  set_tests_properties(python.safetensors_client PROPERTIES TIMEOUT 600
    PASS_REGULAR_EXPRESSION "client check passed" SKIP_RETURN_CODE 77)
endif()

# The CLI tools on a synthetic model written at test time.
if(TARGET qcodec_quantize AND TARGET qcodec_inspect)
  add_executable(write_model_fixture cli/write_model_fixture.cpp)
  target_link_libraries(write_model_fixture PRIVATE qcodec::qcodec qcodec_build_settings
    qcodec_examples_support nlohmann_json::nlohmann_json)
  set(cli_dir ${CMAKE_CURRENT_BINARY_DIR}/cli)
  add_test(NAME cli.model_fixture COMMAND write_model_fixture ${cli_dir})
  set_tests_properties(cli.model_fixture PROPERTIES FIXTURES_SETUP qcodec_cli_model)
  # A run of a tool (arguments after `exit`) whose exit status (zero or nonzero) and output
  # (regex `expect`) are checked; a failed run must leave no file cli/never.safetensors.
  function(qcodec_cli_run test exit expect)
    string(JOIN "@@" command ${ARGN})
    add_test(NAME ${test} COMMAND ${CMAKE_COMMAND} "-DCOMMAND=${command}" -DEXIT=${exit}
      "-DEXPECT=${expect}" -DMUST_NOT_EXIST=${cli_dir}/never.safetensors
      -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/expect_run.cmake)
    set_tests_properties(${test} PROPERTIES FIXTURES_REQUIRED qcodec_cli_model)
  endfunction()
  set(model ${cli_dir}/model.safetensors)
  set(quantize $<TARGET_FILE:qcodec_quantize>)
  foreach(codec int8 int4-g128 qins8 int4-g128+outliers)
    qcodec_cli_run(cli.quantize.${codec} zero "verify: 16 tensors checked, 0 bad"
      ${quantize} ${model} ${cli_dir}/model.${codec}.safetensors --codec ${codec} --verify)
    set_tests_properties(cli.quantize.${codec} PROPERTIES FIXTURES_SETUP qcodec_cli_${codec})
  endforeach()
  # Column importances: the weighted tensors say so, the file verifies; refused for a codec
  # without them, a wrong length, a name matching no quantized weight.
  set(importance ${cli_dir}/importance.safetensors)
  qcodec_cli_run(cli.quantize.importance zero
    "o_proj.weight[^\n]*weighted.*down_proj.weight[^\n]*weighted.*verify: 16 tensors checked, 0 bad"
    ${quantize} ${model} ${cli_dir}/model.importance.safetensors --codec grid4-2level-g16-q6-s256
    --importance ${importance} --verify)
  qcodec_cli_run(cli.fails.importance_codec nonzero "codec 'int8' does not take column importances.*usage"
    ${quantize} ${model} ${cli_dir}/never.safetensors --importance ${importance})
  qcodec_cli_run(cli.fails.importance_length nonzero "'model.layers.0.self_attn.o_proj.weight': 150 column importances for 160 columns"
    ${quantize} ${model} ${cli_dir}/never.safetensors --codec int4-2level-g16-q6-s256
    --importance ${cli_dir}/importance_short.safetensors)
  qcodec_cli_run(cli.fails.importance_unknown nonzero "'model.layers.9.mlp.nothing.weight' names no quantized tensor"
    ${quantize} ${model} ${cli_dir}/never.safetensors --codec grid3-2level-g16-q6-s256
    --importance ${cli_dir}/importance_unknown.safetensors)
  qcodec_cli_run(cli.inspect zero
    "model.layers.1.mlp.down_proj.weight +int4-g128 +\\[160,330\\].*lm_head.weight +F32"
    $<TARGET_FILE:qcodec_inspect> ${cli_dir}/model.int4-g128.safetensors --verify)
  set_tests_properties(cli.inspect PROPERTIES FIXTURES_REQUIRED "qcodec_cli_model;qcodec_cli_int4-g128")
  # Bad arguments and bad input: a message and a non-zero exit, no output file.
  function(qcodec_cli_failure name expect)
    qcodec_cli_run(cli.fails.${name} nonzero "${expect}" ${ARGN})
  endfunction()
  qcodec_cli_failure(bad_group_size "unknown codec 'int4-g100'.*usage: qcodec-quantize"
    ${quantize} ${model} ${cli_dir}/never.safetensors --codec int4-g100)
  qcodec_cli_failure(bad_codec "unknown codec 'int3'.*usage"
    ${quantize} ${model} ${cli_dir}/never.safetensors --codec int3)
  qcodec_cli_failure(unknown_option "unknown option '--fast'.*usage"
    ${quantize} ${model} ${cli_dir}/never.safetensors --fast)
  qcodec_cli_failure(missing_output "expected INPUT and OUTPUT.*usage" ${quantize} ${model})
  qcodec_cli_failure(missing_codec_value "--codec needs a value.*usage"
    ${quantize} ${model} ${cli_dir}/never.safetensors --codec)
  qcodec_cli_failure(bad_input "not-a-model.*cannot open"
    ${quantize} ${cli_dir}/not-a-model.safetensors ${cli_dir}/never.safetensors)
  # OUTPUT the INPUT file, by its name or another path to it: refused before anything is read.
  qcodec_cli_failure(output_is_input "OUTPUT '.*model.safetensors' is INPUT.*usage"
    ${quantize} ${model} ${cli_dir}/../cli/model.safetensors)
  # --in-place: OUTPUT == INPUT allowed, still atomic (a failure leaves the model intact).
  add_test(NAME cli.quantize.in_place COMMAND ${CMAKE_COMMAND} -DQUANTIZE=${quantize}
    -DINSPECT=$<TARGET_FILE:qcodec_inspect> -DMODEL=${model} -DDIR=${cli_dir}/in_place
    -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/expect_in_place.cmake)
  set_tests_properties(cli.quantize.in_place PROPERTIES FIXTURES_REQUIRED qcodec_cli_model TIMEOUT 120)
  # Streaming and in-memory writers, one thread or three: the same bytes (the outlier split's
  # data-dependent ortho stream included).
  foreach(codec int8 int4-g128+outliers)
    add_test(NAME cli.quantize.streaming.${codec} COMMAND ${CMAKE_COMMAND} -DQUANTIZE=${quantize}
      -DMODEL=${model} -DCODEC=${codec} -DDIR=${cli_dir}/streaming.${codec}
      -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/expect_streaming.cmake)
    set_tests_properties(cli.quantize.streaming.${codec} PROPERTIES FIXTURES_REQUIRED qcodec_cli_model TIMEOUT 120)
  endforeach()
  # A sharded checkpoint: the output shards hold the single-file run's bytes, the index maps
  # every tensor; --shard jobs and --write-index give the same files; a failure leaves nothing.
  foreach(codec int4-g128 int4-g128+outliers)
    add_test(NAME cli.quantize.sharded.${codec} COMMAND ${CMAKE_COMMAND} -DQUANTIZE=${quantize}
      -DMODEL_DIR=${cli_dir} -DCODEC=${codec} -DDIR=${cli_dir}/sharded.${codec}
      -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/expect_sharded.cmake)
    set_tests_properties(cli.quantize.sharded.${codec} PROPERTIES FIXTURES_REQUIRED qcodec_cli_model TIMEOUT 180)
  endforeach()
  # Sharded input: --in-place refused (it would leave shards and index out of step); OUTPUT
  # a file, or the input's own directory, refused; --shard naming no shard refused.
  qcodec_cli_failure(sharded_in_place "--in-place is refused for a sharded checkpoint"
    ${quantize} ${cli_dir}/sharded --in-place)
  qcodec_cli_failure(sharded_output_file "a sharded checkpoint's OUTPUT must be a directory or absent"
    ${quantize} ${cli_dir}/sharded/model.safetensors.index.json ${model})
  qcodec_cli_failure(sharded_output_is_input "is the input checkpoint's directory"
    ${quantize} ${cli_dir}/sharded/model.safetensors.index.json ${cli_dir}/sharded/.)
  qcodec_cli_failure(sharded_unknown_shard "--shard model-00009-of-00003.safetensors: the index names no such shard"
    ${quantize} ${cli_dir}/sharded ${cli_dir}/never.safetensors --shard model-00009-of-00003.safetensors)
  # The summary's bpw of the quantized tensors: int8 per row on the fixture's 2 x (160x160,
  # 160x160, 330x160, 160x330) weights = (313600 code bytes + 1620 F32 scales) * 8 / 313600.
  qcodec_cli_run(cli.quantize.summary_bpw zero
    "tensors quantized with int8, [0-9]+ kept; [0-9]+ -> [0-9]+ bytes.*quantized tensors: 8\\.165 bpw \\(320080 encoded bytes for 313600 weights\\)"
    ${quantize} ${model} ${cli_dir}/model.summary_bpw.safetensors --codec=int8 --quiet)
  # A per-tensor-scale codec: a warning on stderr naming the MiniLM measurement and the cure;
  # --help mentions --in-place, the warning and the summary's bpw.
  qcodec_cli_run(cli.quantize.per_tensor_warning zero
    "warning: 'int4-tensor' has one scale per tensor: per-tensor scales collapse real[^\n]*\n[^\n]*cosine 0\\.54[^\n]*all-MiniLM-L6-v2[^\n]*int4-tensor.*per-row or per-group codec"
    ${quantize} ${model} ${cli_dir}/model.per_tensor.safetensors --codec int4-tensor --quiet)
  qcodec_cli_run(cli.quantize.help zero
    "Per-tensor-scale codecs.*a warning: one scale per matrix collapses real models.*--in-place +allow OUTPUT to be INPUT.*summary gives.*bpw of the quantized"
    ${quantize} --help)
  # Not a terminal (ctest captures the output): no progress frames, no carriage return.
  qcodec_cli_run(cli.quantize.no_progress_frames zero "^[^\r]*verify: 16 tensors checked, 0 bad[^\r]*$"
    ${quantize} ${model} ${cli_dir}/model.no_progress.safetensors --codec int8 --verify)
  # Refused part-way, after kept tensors were added: still no output file.
  qcodec_cli_failure(bound_missed "tensor 'model.layers.0.[a-z_.]+': rel_err .* exceeds the bound 1e-09"
    ${quantize} ${model} ${cli_dir}/never.safetensors --max-rel-err 1e-9)
  qcodec_cli_failure(bad_bound "--max-rel-err needs a finite number >= 0, not 'tiny'.*usage"
    ${quantize} ${model} ${cli_dir}/never.safetensors --max-rel-err tiny)
  qcodec_cli_failure(quantized_input "already holds qcodec-encoded tensors"
    ${quantize} ${cli_dir}/model.int8.safetensors ${cli_dir}/never.safetensors)
  set_tests_properties(cli.fails.quantized_input PROPERTIES FIXTURES_REQUIRED qcodec_cli_int8)
  # OUTPUT a link, FIFO, directory or device; INPUT a FIFO: refused, nothing changed, no hang.
  add_test(NAME cli.fails.hostile_paths COMMAND ${CMAKE_COMMAND} -DQUANTIZE=${quantize}
    -DINSPECT=$<TARGET_FILE:qcodec_inspect> -DMODEL=${model} -DDIR=${cli_dir}/hostile
    -P ${CMAKE_CURRENT_SOURCE_DIR}/cli/expect_hostile_paths.cmake)
  set_tests_properties(cli.fails.hostile_paths PROPERTIES FIXTURES_REQUIRED qcodec_cli_model
    TIMEOUT 60)
  qcodec_cli_failure(inspect_usage "usage: qcodec-inspect" $<TARGET_FILE:qcodec_inspect>)
  qcodec_cli_failure(inspect_not_safetensors "truncated file|header length"
    $<TARGET_FILE:qcodec_inspect> ${CMAKE_CURRENT_SOURCE_DIR}/cli/expect_run.cmake)
endif()

# libFuzzer targets, built with clang (-fsanitize=fuzzer,address,undefined) whatever the
# project's compiler: fuzz_safetensors (the reader) and fuzz_encoded_tensors (encoded tensors
# read, decoded, written again and read back). Each runs a fixed number of runs from its
# committed corpus (tests/fuzz/corpus/<test>, inputs of at most 1 KB) and one seed corpus of
# small valid files written at test time, and keeps the inputs it finds in a folder of its own
# in the build tree. To grow a committed corpus with them:
#   <build>/tests/fuzz/fuzz_<name> -merge=1 -max_len=1024 tests/fuzz/corpus/<test> <build>/tests/fuzz_found_<test>
find_program(QCODEC_FUZZ_CXX NAMES clang++ clang++-14)
set(QCODEC_FUZZ_RUNS 100000 CACHE STRING "Runs of the safetensors fuzz target in its test")
set(QCODEC_FUZZ_ENCODED_RUNS 20000 CACHE STRING "Runs of the encoded-tensor fuzz target in its test")
if(QCODEC_CLIENT_CHECKS AND QCODEC_FUZZ_CXX)
  file(GLOB_RECURSE fuzz_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/qcodec/*.hpp)
  get_target_property(eigen_includes Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
  get_target_property(json_includes nlohmann_json::nlohmann_json INTERFACE_INCLUDE_DIRECTORIES)
  set(fuzz_includes)
  foreach(dir IN LISTS eigen_includes json_includes)
    if(NOT dir STREQUAL "/usr/include")  # a system directory breaks #include_next
      list(APPEND fuzz_includes -isystem ${dir})
    endif()
  endforeach()
  set(fuzz_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus)
  # Target `name` from fuzz/<name>.cpp and its test fuzz.<test>, run with the libFuzzer
  # options after `test` on <its own folder>, the seed corpus, then its committed corpus.
  function(qcodec_add_fuzz_target name test)
    # In a folder of its own: a file beside the target of the same name is one path twice for Ninja.
    set(binary ${CMAKE_CURRENT_BINARY_DIR}/fuzz/${name})
    file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
    set(source ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/${name}.cpp)
    add_custom_command(OUTPUT ${binary}
      COMMAND ${QCODEC_FUZZ_CXX} -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=undefined -I${PROJECT_SOURCE_DIR}/include
        ${fuzz_includes} ${source} -o ${binary}
      DEPENDS ${source} ${fuzz_headers}
      VERBATIM
      COMMENT "Building the fuzz target ${name} with ${QCODEC_FUZZ_CXX}")
    add_custom_target(${name} ALL DEPENDS ${binary})
    set(found ${CMAKE_CURRENT_BINARY_DIR}/fuzz_found_${test})
    file(MAKE_DIRECTORY ${found})
    add_test(NAME fuzz.${test} COMMAND ${binary} ${ARGN} -max_len=4096 -timeout=10
      -rss_limit_mb=2048 -print_final_stats=1 ${found} ${fuzz_corpus} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${test})
    set_tests_properties(fuzz.${test} PROPERTIES FIXTURES_REQUIRED qcodec_fuzz_corpus TIMEOUT 300)
  endfunction()
  add_executable(write_fuzz_seeds fuzz/write_fuzz_seeds.cpp)
  target_link_libraries(write_fuzz_seeds PRIVATE qcodec::qcodec qcodec_build_settings
    qcodec_examples_support nlohmann_json::nlohmann_json)
  add_test(NAME fuzz.seeds COMMAND write_fuzz_seeds ${fuzz_corpus})
  set_tests_properties(fuzz.seeds PROPERTIES FIXTURES_SETUP qcodec_fuzz_corpus)
  qcodec_add_fuzz_target(fuzz_safetensors safetensors -runs=${QCODEC_FUZZ_RUNS})
  qcodec_add_fuzz_target(fuzz_encoded_tensors encoded_tensors -runs=${QCODEC_FUZZ_ENCODED_RUNS})
elseif(QCODEC_CLIENT_CHECKS)
  message(STATUS "qcodec: no clang++ found, the fuzz targets are not built")
endif()

qcodec_add_test(test_kv_cache test_kv_cache.cpp)
