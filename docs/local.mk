# docs: see top-level Makefile.am
