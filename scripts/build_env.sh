# Sourced by run.sh and test.sh before pip installs anything.
#
# llama-cpp-python compiles llama.cpp from source on Linux. By default it builds for
# this very CPU (-march=native), and on CPUs with AMX tiles (Xeon Sapphire Rapids and
# newer) ggml then multiplies through AMX, which crashes under some hypervisors
# (seen on this project's machines: SIGSEGV in ggml_backend_amx_mul_mat on the first
# decode). pip also caches the wheel it built, so a native build can end up on a CPU
# it was not made for. So on x86-64 Linux build a portable AVX2 library unless the
# caller chose their own CMAKE_ARGS (e.g. a CUDA or Vulkan build).
LECTERN_PORTABLE_LLAMA=""
if [ "$(uname -s)" = "Linux" ] && [ "$(uname -m)" = "x86_64" ] && [ -z "${CMAKE_ARGS:-}" ]; then
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  LECTERN_PORTABLE_LLAMA=1
fi

# Called after pip: a llama-cpp-python that was built natively with AMX anyway (a
# venv from before this script, or a native wheel in pip's cache, whose key ignores
# CMAKE_ARGS) is rebuilt the portable way, bypassing the cache.
ensure_portable_llama() {
  [ -n "$LECTERN_PORTABLE_LLAMA" ] || return 0
  local version
  version="$(.venv/bin/python - <<'PY'
try:
    import llama_cpp
except ImportError:
    raise SystemExit(0)
if "AMX" in llama_cpp.llama_print_system_info().decode():
    print(llama_cpp.__version__)
PY
)" || version=""
  if [ -n "$version" ]; then
    echo "== rebuilding llama-cpp-python $version as a portable AVX2 build (this one uses AMX)" >&2
    local req
    req="$(mktemp)"
    # The locked entry, hashes and all: the same sdist, built again without pip's cache.
    awk '/^llama-cpp-python==/ { on = 1 } on && /^[a-z]/ && !/^llama-cpp-python==/ { on = 0 } on' \
      requirements/lock.txt > "$req"
    .venv/bin/python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps \
      --no-build-isolation --require-hashes -r "$req"
    rm -f "$req"
  fi
}
