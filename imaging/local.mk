# imaging: see top-level Makefile.am
