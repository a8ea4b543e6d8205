#!/bin/sh
# "operator" (default) or "runtime": which process this container runs.
case "${1:-operator}" in
  operator) exec node /app/dist/operator/main.js ;;
  runtime) exec node /app/dist/runtime/main.js ;;
  *) echo "usage: operator | runtime" >&2; exit 2 ;;
esac
