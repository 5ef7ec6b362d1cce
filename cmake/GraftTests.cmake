# Test registration.
#  - tests/test_<name>.c     -> executable test_<name>, ctest case <name>.
#  - tests/ref/ref_<name>.py -> fixture that writes PyTorch/numpy reference
#    tensors to ${GRAFT_REF_DIR}; the case <name> requires it when present.
#  - tests/cli_<name>.sh     -> shell test run with the graft binary path.
# Reference scripts run under GRAFT_PYTHON: the first interpreter that imports
# torch (Debian's /usr/bin/python3 after scripts/setup.sh test).
set(GRAFT_REF_DIR ${CMAKE_BINARY_DIR}/ref)
file(MAKE_DIRECTORY ${GRAFT_REF_DIR})
if(NOT GRAFT_PYTHON)
  foreach(py /usr/bin/python3 python3)
    execute_process(COMMAND ${py} -c "import torch, numpy" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(GRAFT_PYTHON ${py} CACHE STRING "Python interpreter with torch for reference tests")
      break()
    endif()
  endforeach()
endif()
if(NOT GRAFT_PYTHON)
  message(WARNING "no python3 with torch+numpy: reference tests will fail; run scripts/setup.sh test (installs python3-torch)")
  set(GRAFT_PYTHON /usr/bin/python3)
endif()

add_library(graft_testutil STATIC tests/util/testutil.c tests/util/gradcheck.c tests/util/refdata.c tests/util/testmodels.c)
target_include_directories(graft_testutil PUBLIC ${CMAKE_SOURCE_DIR}/tests/util ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(graft_testutil PUBLIC graftlib)

file(GLOB GRAFT_REF_SCRIPTS CONFIGURE_DEPENDS tests/ref/ref_*.py)
foreach(py ${GRAFT_REF_SCRIPTS})
  get_filename_component(name ${py} NAME_WE)
  string(REGEX REPLACE "^ref_" "" name ${name})
  add_test(NAME refgen_${name} COMMAND ${GRAFT_PYTHON} ${py} ${GRAFT_REF_DIR})
  set_tests_properties(refgen_${name} PROPERTIES FIXTURES_SETUP ref_${name} LABELS ref)
endforeach()

file(GLOB GRAFT_TEST_SOURCES CONFIGURE_DEPENDS tests/test_*.c)
foreach(src ${GRAFT_TEST_SOURCES})
  get_filename_component(exe ${src} NAME_WE)
  string(REGEX REPLACE "^test_" "" name ${exe})
  add_executable(${exe} ${src})
  target_link_libraries(${exe} PRIVATE graft_testutil)
  add_test(NAME ${name} COMMAND ${exe})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "GRAFT_REF_DIR=${GRAFT_REF_DIR};GRAFT_BIN=$<TARGET_FILE:graft>;GRAFT_SRC=${CMAKE_SOURCE_DIR};GRAFT_PYTHON=${GRAFT_PYTHON};GRAFT_THREADS=1;GRAFT_TMP=${CMAKE_BINARY_DIR}/tmp"
    TIMEOUT 300 SKIP_RETURN_CODE 77)
  if(EXISTS ${CMAKE_SOURCE_DIR}/tests/ref/ref_${name}.py)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED ref_${name})
  endif()
endforeach()

file(GLOB GRAFT_CLI_TESTS CONFIGURE_DEPENDS tests/cli_*.sh)
foreach(sh ${GRAFT_CLI_TESTS})
  get_filename_component(name ${sh} NAME_WE)
  add_test(NAME ${name} COMMAND bash ${sh} $<TARGET_FILE:graft>)
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "GRAFT_SRC=${CMAKE_SOURCE_DIR};GRAFT_PYTHON=${GRAFT_PYTHON};GRAFT_THREADS=1;GRAFT_TMP=${CMAKE_BINARY_DIR}/tmp"
    TIMEOUT 600 SKIP_RETURN_CODE 77)
endforeach()

# MPI tests: tests/mpi/test_*.c linked with the MPI library, run on 2 ranks;
# tests/mpi/cli_*.sh get the graft-mpi and graft binaries.
if(MPI_C_FOUND)
  set(GRAFT_MPIRUN ${MPIEXEC_EXECUTABLE} -np 2 --oversubscribe --allow-run-as-root)
  file(GLOB GRAFT_MPI_TESTS CONFIGURE_DEPENDS tests/mpi/test_*.c)
  foreach(src ${GRAFT_MPI_TESTS})
    get_filename_component(exe ${src} NAME_WE)
    string(REGEX REPLACE "^test_" "mpi_" name ${exe})
    add_executable(${name} ${src} tests/util/testutil.c)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/util ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${name} PRIVATE graftlib_mpi)
    add_test(NAME ${name} COMMAND ${GRAFT_MPIRUN} $<TARGET_FILE:${name}>)
    # OpenMPI's dlopen'ed plugins leak at exit from unnamed modules that LSan
    # cannot suppress: leak checking is off for MPI runs only (the same
    # library code is leak-checked by the single-process tests).
    set_tests_properties(${name} PROPERTIES TIMEOUT 120 ENVIRONMENT "GRAFT_THREADS=1;ASAN_OPTIONS=detect_leaks=0")
  endforeach()
  file(GLOB GRAFT_MPI_CLI_TESTS CONFIGURE_DEPENDS tests/mpi/cli_*.sh)
  foreach(sh ${GRAFT_MPI_CLI_TESTS})
    get_filename_component(name ${sh} NAME_WE)
    string(REGEX REPLACE "^cli_" "mpi_cli_" name ${name})
    add_test(NAME ${name} COMMAND bash ${sh} $<TARGET_FILE:graft-mpi> $<TARGET_FILE:graft>)
    set_tests_properties(${name} PROPERTIES TIMEOUT 600
      ENVIRONMENT "GRAFT_SRC=${CMAKE_SOURCE_DIR};GRAFT_MPIRUN=${MPIEXEC_EXECUTABLE} -np 2 --oversubscribe --allow-run-as-root;GRAFT_THREADS=1;GRAFT_TMP=${CMAKE_BINARY_DIR}/tmp;ASAN_OPTIONS=detect_leaks=0")
  endforeach()
endif()
