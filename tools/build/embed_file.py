#!/usr/bin/env python3
"""Writes a C++ source that holds a file's bytes, so the binary needs no data
file at run time.

usage: embed_file.py INPUT OUTPUT NAME [NAMESPACE]
defines NAMESPACE::NAME (const unsigned char[], NUL-terminated) and NAME_size
(the length without the NUL); NAMESPACE defaults to blade::server.
"""
import sys


def main() -> int:
    source, output, name = sys.argv[1:4]
    namespace = sys.argv[4] if len(sys.argv) > 4 else "blade::server"
    with open(source, "rb") as f:
        data = f.read()
    lines = []
    for start in range(0, len(data), 16):
        chunk = data[start:start + 16]
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    text = (
        f"// Generated from {source.rsplit('/', 1)[-1]} by embed_file.py; do not edit.\n"
        "#include <cstddef>\n\n"
        f"namespace {namespace} {{\n\n"
        f"extern const unsigned char {name}[];\n"
        f"extern const std::size_t {name}_size;\n\n"
        f"const unsigned char {name}[] = {{\n" + "\n".join(lines) + "\n  0x00,\n};\n"
        f"const std::size_t {name}_size = {len(data)};\n\n"
        f"}}  // namespace {namespace}\n"
    )
    with open(output, "w", encoding="ascii") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
