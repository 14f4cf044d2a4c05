noinst_LIBRARIES += common/libslatecommon.a
common_libslatecommon_a_SOURCES = \
	common/cleanup.h common/log.c common/log.h common/util.c common/util.h \
	common/reader.c common/reader.h common/frame.c common/frame.h common/config.c common/config.h \
	common/jsonx.c common/jsonx.h common/ipc.c common/ipc.h
common_libslatecommon_a_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
