#!/bin/sh
# "operator" (the default) or "runtime": which process this container runs; further arguments go to node.
# Anything else is run as given (e.g. `docker run IMAGE node -e ...`), as the official Node images do.
set -e
case "${1:-operator}" in
  operator)
    [ "$#" -gt 0 ] && shift
    exec node /app/dist/operator/main.js "$@"
    ;;
  runtime)
    shift
    exec node /app/dist/runtime/main.js "$@"
    ;;
  *) exec "$@" ;;
esac
