# Man pages and the control API reference.
dist_man_MANS += docs/slatectl.8 docs/slated.8 docs/slate.conf.5 docs/slate-session.8 docs/slate-agent.8
EXTRA_DIST += docs/control-api.md docs/design.md docs/security.md
