# Cross-compiling edge-agent for linux/arm64 with Debian's aarch64-linux-gnu toolchain
# against the sysroot tools/arm64/sysroot.sh makes:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=tools/arm64/toolchain.cmake \
#         -DEDGE_ARM64_SYSROOT=/abs/sysroot -DEDGE_BUILD_TESTS=OFF
# protoc runs on the build host (its version matches the sysroot's protobuf: both Debian 12).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

if(NOT EDGE_ARM64_SYSROOT)
  set(EDGE_ARM64_SYSROOT "$ENV{EDGE_ARM64_SYSROOT}")
endif()
if(NOT EDGE_ARM64_SYSROOT OR NOT IS_DIRECTORY "${EDGE_ARM64_SYSROOT}/usr/include")
  message(FATAL_ERROR "EDGE_ARM64_SYSROOT must name a sysroot made by tools/arm64/sysroot.sh")
endif()
# Passed on to the compiler checks' own CMake runs.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGE_ARM64_SYSROOT)

# The sysroot holds the C library too (libc6-dev:arm64, the same glibc 2.36 as the cross
# toolchain's), so it is the compiler's --sysroot; libstdc++ and libgcc come with the
# compiler. Programs (protoc, pkg-config) are the host's.
set(CMAKE_SYSROOT "${EDGE_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${EDGE_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${EDGE_ARM64_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${EDGE_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${EDGE_ARM64_SYSROOT}/usr/share/pkgconfig")
set(Protobuf_PROTOC_EXECUTABLE /usr/bin/protoc CACHE FILEPATH "host protoc")
