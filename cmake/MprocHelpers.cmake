# The one place where mproc's compiler flags are set.

# Warnings (and sanitizers) for a target of ours; PRIVATE, so they never reach users' targets.
function(mproc_target_flags target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(MPROC_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # GCC 12 (Debian 12's) warns at -O3 about std::string's own copies, with sizes of exabytes
  # (GCC bugs 105329, 105651): a Release build must not fail on a warning about code that is fine.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(MPROC_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${MPROC_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${MPROC_SANITIZE})
  endif()
endfunction()

# mproc_add_library(<area> HEADERS ... SOURCES ... DEPS ...)
# creates mproc_<area> with alias mproc::<area>, public headers in <area>/include, installed.
function(mproc_add_library area)
  cmake_parse_arguments(arg "" "" "HEADERS;SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target mproc_${area})
  add_library(${target} ${arg_SOURCES} ${arg_HEADERS})
  add_library(mproc::${area} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${area} OUTPUT_NAME mproc_${area}
                                             POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${arg_DEPS} PRIVATE ${arg_PRIVATE_DEPS})
  mproc_target_flags(${target})
  install(TARGETS ${target} EXPORT mprocTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/mproc DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

# mproc_add_test(<file.cc> [LABELS ...] [TIMEOUT s] [DEPS ...])
# one GoogleTest binary per file; every test case becomes a ctest test with a timeout.
function(mproc_add_test file)
  cmake_parse_arguments(arg "" "TIMEOUT" "LABELS;DEPS" ${ARGN})
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 60)
  endif()
  if(NOT arg_LABELS)
    set(arg_LABELS unit)
  endif()
  get_filename_component(name ${file} NAME_WE)
  add_executable(${name} ${file})
  target_link_libraries(${name} PRIVATE mproc::mproc mproc_test_support ${arg_DEPS})
  mproc_target_flags(${name})
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${arg_TIMEOUT} LABELS "${arg_LABELS}")
endfunction()

# mproc_add_example(<name> [SOURCES ...]): an example program built from examples/<name>.cc.
function(mproc_add_example name)
  add_executable(${name} ${name}.cc)
  target_link_libraries(${name} PRIVATE mproc::mproc)
  mproc_target_flags(${name})
endfunction()
