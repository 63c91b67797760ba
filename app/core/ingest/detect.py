"""What a file is: its kind (pdf, docx, code, ...) and whether to skip it.

Decided by name and by the first bytes, never by reading a whole file: lock
files, minified bundles and known binary types are skipped with a reason the
user can read (and, where it makes sense, force).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# Formats PyMuPDF opens, with a page per page (reflowable ones laid out by it).
PAGED_KINDS = {
    ".pdf": "pdf",
    ".epub": "epub",
    ".mobi": "mobi",
    ".fb2": "fb2",
    ".xps": "xps",
    ".oxps": "xps",
    ".cbz": "cbz",
}
ZIP_KINDS = frozenset({"epub", "cbz", "docx", "odt"})

TEXT_KINDS = {
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".htm": "html",
    ".html": "html",
    ".xhtml": "html",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}

LANGUAGES = {
    ".py": "python", ".pyi": "python", ".pyw": "python", ".ipynb": "json",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".rs": "rust", ".go": "go", ".java": "java", ".kt": "kotlin", ".kts": "kotlin",
    ".scala": "scala", ".swift": "swift", ".m": "objective-c", ".mm": "objective-c",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".hxx": "cpp", ".cs": "csharp", ".fs": "fsharp", ".vb": "vbnet",
    ".rb": "ruby", ".php": "php", ".pl": "perl", ".pm": "perl", ".lua": "lua",
    ".r": "r", ".jl": "julia", ".dart": "dart", ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".hrl": "erlang", ".clj": "clojure", ".cljs": "clojure",
    ".hs": "haskell", ".ml": "ocaml", ".mli": "ocaml", ".elm": "elm", ".zig": "zig",
    ".nim": "nim", ".v": "verilog", ".sv": "systemverilog", ".vhd": "vhdl",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".fish": "fish", ".ps1": "powershell",
    ".bat": "batch", ".cmd": "batch", ".sql": "sql", ".graphql": "graphql", ".gql": "graphql",
    ".proto": "protobuf", ".css": "css", ".scss": "scss", ".sass": "sass", ".less": "less",
    ".vue": "vue", ".svelte": "svelte", ".xml": "xml", ".xsl": "xml", ".svg": "xml",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini",
    ".conf": "config", ".env": "dotenv", ".properties": "properties", ".gradle": "groovy",
    ".groovy": "groovy", ".tf": "terraform", ".hcl": "hcl", ".nix": "nix",
    ".cmake": "cmake", ".mk": "make", ".tex": "latex", ".bib": "bibtex", ".sol": "solidity",
    ".asm": "assembly", ".s": "assembly", ".f90": "fortran", ".f": "fortran",
    ".pas": "pascal", ".lisp": "lisp", ".el": "elisp", ".scm": "scheme", ".rkt": "racket",
    ".cu": "cuda", ".glsl": "glsl", ".hlsl": "hlsl", ".wgsl": "wgsl", ".ipp": "cpp",
    ".diff": "diff", ".patch": "diff", ".j2": "jinja", ".jinja": "jinja", ".tmpl": "template",
}  # fmt: skip

NAMED_LANGUAGES = {
    "Makefile": "make", "GNUmakefile": "make", "Dockerfile": "dockerfile",
    "Containerfile": "dockerfile", "CMakeLists.txt": "cmake", "Rakefile": "ruby",
    "Gemfile": "ruby", "Vagrantfile": "ruby", "Justfile": "just", "BUILD": "starlark",
    "WORKSPACE": "starlark", "Jenkinsfile": "groovy", "Procfile": "procfile",
}  # fmt: skip

LOCK_FILES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "poetry.lock", "Pipfile.lock", "uv.lock", "pdm.lock", "Cargo.lock", "Gemfile.lock",
    "composer.lock", "go.sum", "mix.lock", "pubspec.lock", "Podfile.lock", "flake.lock",
    "packages.lock.json", "gradle.lockfile", "conan.lock", "deno.lock",
})  # fmt: skip

BINARY_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ico", ".icns",
    ".heic", ".psd", ".mp3", ".wav", ".flac", ".ogg", ".m4a", ".aac", ".mp4", ".mov",
    ".avi", ".mkv", ".webm", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar",
    ".tar", ".jar", ".war", ".whl", ".egg", ".exe", ".dll", ".so", ".dylib", ".o", ".a",
    ".lib", ".obj", ".class", ".pyc", ".pyo", ".wasm", ".bin", ".dat", ".db", ".sqlite",
    ".sqlite3", ".ttf", ".otf", ".woff", ".woff2", ".eot", ".dmg", ".iso", ".img",
    ".pkl", ".pickle", ".npy", ".npz", ".pt", ".pth", ".onnx", ".safetensors", ".gguf",
    ".h5", ".parquet", ".avro", ".xlsx", ".xls", ".pptx", ".ppt", ".doc", ".ods",
    ".odp", ".rtf", ".pages", ".key", ".numbers", ".lockb",
})  # fmt: skip

# Magic numbers worth naming when a file's name claims something else.
MAGIC = (
    (b"%PDF-", "a PDF"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a Windows program"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"OggS", "an Ogg file"),
    (b"RIFF", "a RIFF media file"),
    (b"\x00asm", "WebAssembly"),
)

SNIFF_BYTES = 8192
MINIFIED_EXTENSIONS = frozenset({".js", ".mjs", ".cjs", ".css"})
MINIFIED_LINE_CHARS = 500  # average line length that marks a bundle, not source


@dataclass(frozen=True)
class Kind:
    """What to do with a file: its kind, language, and extractor family."""

    kind: str
    family: str  # "paged", "docx" (word processors: DOCX, ODT), "text"
    language: str | None = None


@functools.lru_cache(maxsize=4096)
def split_name(path: str) -> tuple[str, str]:
    """``(file name, lower-case extension with its dot)`` of a display path."""
    base = path.rpartition("/")[2]
    stem, dot, ext = base.rpartition(".")
    return base, ("." + ext.lower() if dot and stem else "")


def kind_of(name: str, head: bytes) -> Kind:
    """The kind of a file from its name and its first bytes."""
    base, suffix = split_name(name)
    if suffix in PAGED_KINDS:
        return Kind(PAGED_KINDS[suffix], "paged")
    if suffix in (".docx", ".odt"):
        return Kind(suffix[1:], "docx")
    if head.startswith(b"%PDF-"):
        return Kind("pdf", "paged")
    if suffix in TEXT_KINDS:
        return Kind(TEXT_KINDS[suffix], "text")
    if base in NAMED_LANGUAGES:
        return Kind("code", "text", NAMED_LANGUAGES[base])
    if suffix in LANGUAGES:
        language = LANGUAGES[suffix]
        return Kind("json" if language == "json" else "code", "text", language)
    if head.startswith(b"#!"):
        return Kind("code", "text", _shebang_language(head))
    return Kind("text", "text")


_SHEBANGS = {
    "python": "python", "node": "javascript", "bash": "shell", "sh": "shell", "zsh": "shell",
    "ruby": "ruby", "perl": "perl", "php": "php", "lua": "lua",
}  # fmt: skip


def _shebang_language(head: bytes) -> str | None:
    """``#!/usr/bin/env python3`` -> python."""
    words = head[2:200].split(b"\n", 1)[0].decode("ascii", "replace").split()
    if not words:
        return None
    program = words[-1] if words[0].endswith("/env") else words[0]
    program = program.rsplit("/", 1)[-1].rstrip("0123456789.")
    return _SHEBANGS.get(program)


def magic_name(head: bytes) -> str | None:
    """What the first bytes say the file is, if they are a known signature."""
    for signature, name in MAGIC:
        if head.startswith(signature):
            return name
    return None


def skip_reason(name: str, size: int, size_limit: int) -> str | None:
    """Why a file should be skipped before reading it (forceable), or None."""
    base, _ = split_name(name)
    if base in LOCK_FILES:
        return "lock file (generated dependency pins); force it to include it"
    lowered = base.lower()
    if lowered.endswith((".min.js", ".min.css", ".min.mjs")) or lowered.endswith(".js.map"):
        return "minified bundle; force it to include it"
    if size > size_limit:
        return (
            f"{_mb(size)} is over the {_mb(size_limit)} size limit; "
            "force it or raise the limit to include it"
        )
    return None


def binary_reason(name: str, head: bytes) -> str | None:
    """Why a file is binary (not text), judging by its name and first bytes."""
    suffix = split_name(name)[1]
    if suffix in BINARY_EXTENSIONS:
        return f"binary file ({magic_name(head) or suffix + ' file'}), not text"
    nul = head.find(b"\x00")
    if nul < 0 or head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return None
    what = magic_name(head)
    if what:
        return f"binary file with a text name: it is {what}"
    return f"binary file with a text name: NUL byte at offset {nul}, so it is not text"


def minified_reason(name: str, text: str) -> str | None:
    """A .js/.css file whose lines are far longer than source code's."""
    if split_name(name)[1] not in MINIFIED_EXTENSIONS or len(text) < 5000:
        return None
    lines = text.count("\n") + 1
    if len(text) / lines > MINIFIED_LINE_CHARS:
        return f"minified bundle (lines average {len(text) // lines} chars); force it to include it"
    return None


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size < 10_000_000 else f"{size // 1_000_000} MB"
