# bench: see top-level Makefile.am
