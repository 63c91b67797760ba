# Sourced by run.sh and test.sh before pip installs anything.
#
# llama-cpp-python compiles llama.cpp from source on Linux. By default it builds for
# this very CPU (-march=native), and on CPUs with AMX tiles (Xeon Sapphire Rapids and
# newer) ggml then multiplies through AMX, which crashes under some hypervisors
# (seen on this project's machines: SIGSEGV in ggml_backend_amx_mul_mat on the first
# decode). pip also caches the wheel it built, so a native build can end up on a CPU
# it was not made for. So on x86-64 Linux build a portable AVX2 library unless the
# caller chose their own CMAKE_ARGS (e.g. a CUDA or Vulkan build).
if [ "$(uname -s)" = "Linux" ] && [ "$(uname -m)" = "x86_64" ] && [ -z "${CMAKE_ARGS:-}" ]; then
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
fi
