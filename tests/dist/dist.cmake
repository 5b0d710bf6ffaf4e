# The Pool on a cluster (mproc::dist). Each test case runs as its own
# `mpirun --oversubscribe -np 3 dist_test --gtest_filter=...` (rank 0 runs the test, ranks 1 and
# 2 serve), with its own TIMEOUT; the MPI launcher is the test's emulator, so test discovery
# runs under it as well. As root, Open MPI needs to be told that is fine; in containers its
# single-copy mechanism (CMA/ptrace) is usually not allowed.
# What needs no MPI job: the hub's credit window.
mproc_add_test(dist/credit_window_test.cc)
target_include_directories(credit_window_test PRIVATE ${PROJECT_SOURCE_DIR}/dist/src)  # a detail

find_program(MPROC_MPIEXEC NAMES mpirun mpiexec HINTS ${MPI_HOME}/bin)
if(NOT MPROC_MPIEXEC)
  message(STATUS "mproc: no mpirun found; the dist tests are not built")
  return()
endif()
# Open MPI takes its installation prefix from the launcher's path: /bin/mpirun (a merged /usr)
# would make it "/", so the real file is named.
get_filename_component(MPROC_MPIEXEC "${MPROC_MPIEXEC}" REALPATH)
# Under AddressSanitizer the ranks run without LeakSanitizer: Open MPI leaves its own allocations
# at MPI_Finalize, from plugins it has unloaded by then, so their stacks cannot be told apart (or
# suppressed) by module. Address and undefined-behaviour checks stay on, and the same tests run
# with leak checks in DistPool.WithoutMpirunRunsLocally below.
set(mproc_mpi_sanitizer_env)
if(MPROC_SANITIZE MATCHES "address")
  set(mproc_mpi_sanitizer_env ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
endif()
set(mproc_mpi_launcher
  ${CMAKE_COMMAND} -E env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
  MPROC_DIST_WORKERS=2 ${mproc_mpi_sanitizer_env}
  ${MPROC_MPIEXEC} --oversubscribe --bind-to none -np 3)

add_executable(dist_test dist/dist_test.cc)
target_link_libraries(dist_test PRIVATE mproc::mproc mproc::dist mproc_test_support)
mproc_target_flags(dist_test)
set_target_properties(dist_test PROPERTIES CROSSCOMPILING_EMULATOR "${mproc_mpi_launcher}")
gtest_discover_tests(dist_test DISCOVERY_TIMEOUT 120
  PROPERTIES TIMEOUT 120 LABELS dist)
# The same binary without mpirun: no MPI environment, the local pool, the same tests.
add_test(NAME DistPool.WithoutMpirunRunsLocally COMMAND $<TARGET_FILE:dist_test>)
set_tests_properties(DistPool.WithoutMpirunRunsLocally PROPERTIES TIMEOUT 300 LABELS "dist;unit")

# The example, across 3 ranks.
if(TARGET dist_primes)
add_test(NAME DistPrimesExample.CountsPrimesAcrossRanks
  COMMAND ${mproc_mpi_launcher} $<TARGET_FILE:dist_primes> 300000)
set_tests_properties(DistPrimesExample.CountsPrimesAcrossRanks PROPERTIES TIMEOUT 120
  LABELS "dist;example"
  PASS_REGULAR_EXPRESSION "primes below 300000: 25997 \\(serial\\), 25997 \\(pool\\)")
endif()
