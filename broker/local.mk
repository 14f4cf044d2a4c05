# broker: see top-level Makefile.am
