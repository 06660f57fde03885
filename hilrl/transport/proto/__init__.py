"""Generated protocol modules (see scripts/gen_proto.sh)."""
