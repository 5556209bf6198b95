#!/usr/bin/env python3
# The blade CLI links blade-model and blade-executors only (core/meson.build),
# never blade-core: no experiment service, no scheduler (Boost.Asio), no
# SQLite store. Its symbol table says what was linked; any of those names in
# it means blade-core reached the CLI again.
import subprocess
import sys

FORBIDDEN = ("boost::asio", "blade::ExperimentService", "blade::Scheduler", "blade::Store::",
             "sqlite3_")

blade = sys.argv[1]
symbols = subprocess.run(["nm", "-C", blade], capture_output=True, text=True,
                         check=True).stdout.splitlines()
if not any("blade::" in s for s in symbols):
    sys.exit(f"FAIL: {blade} has no blade:: symbols (stripped?); nothing can be checked")
found = [s for s in symbols if any(f in s for f in FORBIDDEN)]
if found:
    print(f"FAIL: {blade} links what only bladed should: {len(found)} symbol(s), e.g.")
    for s in found[:10]:
        print("   ", s)
    sys.exit(1)
print(f"ok: {len(symbols)} symbols, none of {', '.join(FORBIDDEN)}")
