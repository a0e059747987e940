# Cross toolchain for aarch64 Linux with Debian's g++-aarch64-linux-gnu (scripts/test-arm).
# Binaries run on an x86 host through qemu-user: CMAKE_CROSSCOMPILING_EMULATOR lets CMake's
# own steps (gtest_discover_tests) run them; ZEN_QEMU overrides which qemu is used.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(ZEN_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "cross tool prefix")
set(CMAKE_C_COMPILER ${ZEN_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${ZEN_CROSS_PREFIX}g++)
set(ZEN_CROSS_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "target libraries (qemu -L)")

set(CMAKE_FIND_ROOT_PATH ${ZEN_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

if(NOT ZEN_QEMU)
  find_program(ZEN_QEMU NAMES qemu-aarch64 qemu-aarch64-static)
endif()
if(ZEN_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ZEN_QEMU} -L ${ZEN_CROSS_SYSROOT})
endif()
