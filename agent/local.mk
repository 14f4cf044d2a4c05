# Wire protocol shared by slated and slate-agent; the agent itself links only libc (static).
noinst_LIBRARIES += agent/libslateproto.a
agent_libslateproto_a_SOURCES = agent/proto.c agent/proto.h common/reader.c common/reader.h
