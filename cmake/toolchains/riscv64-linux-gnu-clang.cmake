# Cross-compile for 64-bit RISC-V Linux (RVV 1.0 kernels: AUTOCONFIG_TARGET=rv64gcv)
# from an x86-64 Debian 12 host. GCC 12 has no <riscv_vector.h>, so the
# compiler is clang (>= 16: the __riscv_-prefixed RVV intrinsics), with the
# C/C++ libraries, headers and binutils of Debian's g++-riscv64-linux-gnu:
#   apt install clang-16 g++-riscv64-linux-gnu qemu-user
#   cmake -S tests/cpp -B build/rvv -DAUTOCONFIG_TARGET=rv64gcv \
#         -DCMAKE_TOOLCHAIN_FILE=$PWD/cmake/toolchains/riscv64-linux-gnu-clang.cmake
#   qemu-riscv64 -L /usr/riscv64-linux-gnu -cpu rv64,v=true,vlen=256 build/rvv/kernel_check
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR riscv64)

set(RISCV64_TRIPLE "riscv64-linux-gnu" CACHE STRING "Target triple (clang --target, binutils prefix)")
set(RISCV64_SYSROOT "/usr/${RISCV64_TRIPLE}" CACHE PATH "Target libraries and headers (qemu -L uses it too)")
set(RISCV64_CLANG_SUFFIX "-16" CACHE STRING "clang version suffix (clang-16, clang++-16); empty for plain clang")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES RISCV64_TRIPLE RISCV64_SYSROOT RISCV64_CLANG_SUFFIX)

set(CMAKE_C_COMPILER "clang${RISCV64_CLANG_SUFFIX}")
set(CMAKE_CXX_COMPILER "clang++${RISCV64_CLANG_SUFFIX}")
set(CMAKE_C_COMPILER_TARGET "${RISCV64_TRIPLE}")
set(CMAKE_CXX_COMPILER_TARGET "${RISCV64_TRIPLE}")

set(CMAKE_FIND_ROOT_PATH "${RISCV64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(RISCV64_QEMU qemu-riscv64)
if(RISCV64_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${RISCV64_QEMU};-L;${RISCV64_SYSROOT};-cpu;rv64,v=true,vlen=256")
endif()
