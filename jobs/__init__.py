"""mnistdist's jobs: thin entry points that parse options, connect, call the library and
write outputs."""
