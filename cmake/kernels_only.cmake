# ZEN_KERNELS_ONLY: kernels/ and test_kernels, with no dependency besides the C++ library and
# GoogleTest. Used for cross builds (scripts/test-arm), where Cap'n Proto, libsodium and the
# rest are not available for the target. GoogleTest is built from source when
# ZEN_GTEST_SOURCE_DIR is set (Debian's libgtest-dev ships it in /usr/src/googletest).
set(ZEN_TESTDATA_DIR "${CMAKE_SOURCE_DIR}/../shared/testdata" CACHE PATH "reference test data folder")
include_directories(${CMAKE_SOURCE_DIR})
add_subdirectory(kernels)

set(ZEN_GTEST_SOURCE_DIR "" CACHE PATH "GoogleTest sources to build (empty: find_package)")
if(ZEN_GTEST_SOURCE_DIR)
  set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  set(zen_gtest_system)
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.25)
    set(zen_gtest_system SYSTEM)  # its headers' warnings are not ours
  endif()
  add_subdirectory(${ZEN_GTEST_SOURCE_DIR} googletest EXCLUDE_FROM_ALL ${zen_gtest_system})
  target_compile_options(gtest PRIVATE -w)  # not our code: its warnings are not ours to fix
  target_compile_options(gtest_main PRIVATE -w)
  if(NOT TARGET GTest::gtest)  # googletest defines these aliases itself since 1.11
    add_library(GTest::gtest ALIAS gtest)
    add_library(GTest::gtest_main ALIAS gtest_main)
  endif()
else()
  find_package(GTest REQUIRED)
endif()

enable_testing()
add_subdirectory(tests)
