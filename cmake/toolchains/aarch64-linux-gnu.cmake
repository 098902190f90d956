# Cross-compile for 64-bit Arm Linux from an x86-64 host with Debian's
# g++-aarch64-linux-gnu (sysroot /usr/aarch64-linux-gnu):
#   cmake -S tests/cpp -B build/arm-neon \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#         -DAUTOCONFIG_TARGET=armv8-neon        # or armv8-sve, or an Arm profile JSON
# The kernel generator still runs on the build machine's Python; only the
# compilers change. With qemu-user installed, CMake (and ctest) run target
# binaries through CMAKE_CROSSCOMPILING_EMULATOR.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

# Another prefix or sysroot (e.g. an Arm GNU Toolchain tarball): pass
# -DAARCH64_TRIPLE=... / -DAARCH64_SYSROOT=... on the first configure.
set(AARCH64_TRIPLE "aarch64-linux-gnu" CACHE STRING "Cross compiler prefix (<triple>-gcc, <triple>-g++)")
set(AARCH64_SYSROOT "/usr/${AARCH64_TRIPLE}" CACHE PATH "Target libraries and headers (qemu -L uses it too)")
# try_compile projects see these variables too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AARCH64_TRIPLE AARCH64_SYSROOT)

set(CMAKE_C_COMPILER "${AARCH64_TRIPLE}-gcc")
set(CMAKE_CXX_COMPILER "${AARCH64_TRIPLE}-g++")

# Libraries, headers and CMake packages come from the target's root only;
# programs (Python for the generator, qemu) from the host.
set(CMAKE_FIND_ROOT_PATH "${AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(AARCH64_QEMU qemu-aarch64)
if(AARCH64_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${AARCH64_QEMU};-L;${AARCH64_SYSROOT}")
endif()
