#!/bin/sh
# Remove debug symbols from the venv's shared objects: some wheels ship them (uvloop, greenlet,
# sqlalchemy, PyYAML, httptools: ~25 MB), nothing at run time reads them.
# usage: strip-venv.sh VENV   (needs binutils' strip; the Dockerfile's builder and build.sh's host)
set -eu
find "$1" -type f -name '*.so*' -exec strip --strip-debug {} +
