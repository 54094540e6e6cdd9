# ctest driver of one fuzz target (see fuzz.cmake):
#   cmake -DFUZZER=<binary> -DSEEDS=<fuzz/corpus/T> -DWORK=<scratch dir> [-DDICT=<file>]
#         -P run_fuzzer.cmake
# Fuzzes for 30 s starting from a fresh copy of the checked-in seeds, so new
# inputs and crash artifacts land in the build tree, never in the sources.
# Fails (with libFuzzer's report and the crash file's path) on any crash,
# sanitizer finding, leak, timeout or out-of-memory.
foreach(v FUZZER SEEDS WORK)
  if(NOT ${v})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${v}= is required")
  endif()
endforeach()
if(NOT EXISTS "${FUZZER}")
  message(FATAL_ERROR "run_fuzzer.cmake: ${FUZZER} is not built (cmake --build the build dir)")
endif()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/artifacts")
file(COPY "${SEEDS}/" DESTINATION "${WORK}/corpus")

set(args -max_total_time=30 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
         -artifact_prefix=${WORK}/artifacts/)
if(DICT)
  list(APPEND args -dict=${DICT})
endif()
execute_process(
  COMMAND "${FUZZER}" ${args} "${WORK}/corpus" "${SEEDS}"
  WORKING_DIRECTORY "${WORK}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found "${WORK}/artifacts/*")
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); input(s): ${found}")
endif()
