# Included by the top-level CMakeLists.txt: builds the libFuzzer targets of
# fuzz/ (a separate clang project, see fuzz/CMakeLists.txt) as part of the
# main build, into ${CMAKE_BINARY_DIR}/fuzz-build, and registers one ctest
# per target (label "fuzz") that fuzzes for 30 s from the checked-in corpus.
option(BPS_FUZZ "Build the libFuzzer targets when clang++-14 and libclang-rt-14-dev are there" ON)
if(NOT BPS_FUZZ)
  return()
endif()

# The fuzzers are extra checks, not part of the product: without the
# toolchain they are left out (and say so) rather than failing the configure.
find_program(BPS_FUZZ_CXX NAMES clang++-14)
if(NOT BPS_FUZZ_CXX)
  message(STATUS
    "Fuzz targets skipped: clang++-14 not found. Install clang-14 and libclang-rt-14-dev "
    "(scripts/install-deps does) to build them.")
  return()
endif()

# clang without libclang-rt-14-dev compiles but cannot link -fsanitize=fuzzer.
execute_process(COMMAND ${BPS_FUZZ_CXX} -print-runtime-dir
                OUTPUT_VARIABLE BPS_FUZZ_RT_DIR OUTPUT_STRIP_TRAILING_WHITESPACE)
file(GLOB BPS_FUZZ_RT "${BPS_FUZZ_RT_DIR}/libclang_rt.fuzzer-*.a")
if(NOT BPS_FUZZ_RT)
  message(STATUS
    "Fuzz targets skipped: ${BPS_FUZZ_CXX} has no libFuzzer runtime in '${BPS_FUZZ_RT_DIR}'. "
    "Install libclang-rt-14-dev (scripts/install-deps does) to build them.")
  return()
endif()

include(ExternalProject)
set(BPS_FUZZ_BUILD_DIR ${CMAKE_BINARY_DIR}/fuzz-build)
set(BPS_FUZZ_TARGETS
  fuzz_lighthouse_json
  fuzz_sync_request
  fuzz_flags
  fuzz_cli_options
  fuzz_tc3_verifier
  fuzz_list_query
)
set(BPS_FUZZ_BYPRODUCTS)
foreach(t ${BPS_FUZZ_TARGETS})
  list(APPEND BPS_FUZZ_BYPRODUCTS ${BPS_FUZZ_BUILD_DIR}/${t})
endforeach()

# BUILD_ALWAYS: the inner build tracks its own sources; running it is a
# no-op when nothing changed, and the outer build cannot see those sources.
ExternalProject_Add(bps_fuzzers
  SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR}
  BINARY_DIR ${BPS_FUZZ_BUILD_DIR}
  CMAKE_ARGS -DCMAKE_CXX_COMPILER=${BPS_FUZZ_CXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo
  CMAKE_GENERATOR ${CMAKE_GENERATOR}
  BUILD_ALWAYS ON
  INSTALL_COMMAND ""
  BUILD_BYPRODUCTS ${BPS_FUZZ_BYPRODUCTS}
)

# Dictionaries by target (fuzz/dict/); targets without one get none.
set(BPS_FUZZ_DICT_fuzz_lighthouse_json lighthouse_json.dict)
set(BPS_FUZZ_DICT_fuzz_flags flags.dict)
set(BPS_FUZZ_DICT_fuzz_cli_options flags.dict)
set(BPS_FUZZ_DICT_fuzz_tc3_verifier tc3_verifier.dict)
set(BPS_FUZZ_DICT_fuzz_list_query list_query.dict)

foreach(t ${BPS_FUZZ_TARGETS})
  set(dict "")
  if(BPS_FUZZ_DICT_${t})
    set(dict ${CMAKE_CURRENT_LIST_DIR}/dict/${BPS_FUZZ_DICT_${t}})
  endif()
  add_test(NAME ${t}
    COMMAND ${CMAKE_COMMAND}
      -DFUZZER=${BPS_FUZZ_BUILD_DIR}/${t}
      -DSEEDS=${CMAKE_CURRENT_LIST_DIR}/corpus/${t}
      -DWORK=${CMAKE_BINARY_DIR}/fuzz-runs/${t}
      -DDICT=${dict}
      -P ${CMAKE_CURRENT_LIST_DIR}/run_fuzzer.cmake)
  # 30 s of fuzzing, plus start-up and the final corpus merge on a loaded machine.
  set_tests_properties(${t} PROPERTIES LABELS fuzz TIMEOUT 180)
endforeach()

# Inputs that once crashed a target (fuzz/regressions/<target>/<name>): each is
# replayed on its own and must pass, so a fixed bug stays fixed.
foreach(t ${BPS_FUZZ_TARGETS})
  file(GLOB regressions ${CMAKE_CURRENT_LIST_DIR}/regressions/${t}/*)
  foreach(input ${regressions})
    get_filename_component(name ${input} NAME)
    add_test(NAME ${t}_regression_${name} COMMAND ${BPS_FUZZ_BUILD_DIR}/${t} ${input})
    set_tests_properties(${t}_regression_${name} PROPERTIES LABELS fuzz TIMEOUT 60)
  endforeach()
endforeach()
